import { evaluate, formatResult, EXPRESSION_CHARS, MAX_EXPRESSION_LENGTH } from "./calculator";
import { parseNumber } from "./answerCheck";

/** One `<<expr=result>>` annotation found in a rationale. */
export interface Annotation {
  /** Offset of `<<` in the rationale. */
  start: number;
  /** Offset just past `>>`. */
  end: number;
  expression: string;
  written: string;
}

export type ArithmeticVerdict =
  | { kind: "ok"; value: number }
  /** The expression evaluates, but not to the result written after `=`. */
  | { kind: "wrong"; value: number; expected: string }
  /** The expression is outside the calculator's grammar (or divides by zero). */
  | { kind: "unparseable"; reason: string }
  /** The result written after `=` is not a number. */
  | { kind: "bad-result"; value: number };

export interface CheckedAnnotation extends Annotation {
  verdict: ArithmeticVerdict;
}

const ANNOTATION = /<<([^<>]*?)=([^<>=]*)>>/g;

/** Every `<<expr=result>>` in a text, in order. */
export function findAnnotations(text: string): Annotation[] {
  const out: Annotation[] = [];
  for (const m of text.matchAll(ANNOTATION)) {
    out.push({
      start: m.index,
      end: m.index + m[0].length,
      expression: m[1] as string,
      written: (m[2] as string).trim(),
    });
  }
  return out;
}

/**
 * True when the written result is what the expression gives: within 1e-4, or the value rounded to as
 * many decimals as were written (so `<<10/3=3.33>>` is right and `<<10/3=3.4>>` is not).
 */
export function resultMatches(value: number, written: number, writtenText: string): boolean {
  if (Math.abs(value - written) <= 1e-4 * Math.max(1, Math.abs(written))) return true;
  const decimals = /\.(\d+)/.exec(writtenText)?.[1]?.length ?? 0;
  if (decimals === 0) return false;
  const scale = 10 ** decimals;
  return Math.abs(Math.round(value * scale) / scale - written) <= 0.5 / scale;
}

export function checkAnnotation(a: Annotation): CheckedAnnotation {
  const result = evaluate(a.expression);
  if (!result.ok) return { ...a, verdict: { kind: "unparseable", reason: result.reason } };
  const written = parseNumber(a.written);
  if (written === null) return { ...a, verdict: { kind: "bad-result", value: result.value } };
  if (resultMatches(result.value, written, a.written)) return { ...a, verdict: { kind: "ok", value: result.value } };
  return { ...a, verdict: { kind: "wrong", value: result.value, expected: formatResult(result.value) } };
}

/** Checks every annotation of a rationale: where the arithmetic went wrong, and where it could not be read. */
export function checkArithmetic(rationale: string): CheckedAnnotation[] {
  return findAnnotations(rationale).map(checkAnnotation);
}

/**
 * The calculator's trigger during decoding: when the text ends in `<<expr=` with an expression of the
 * calculator's characters, returns that expression; otherwise null.
 */
export function pendingCalculation(text: string): string | null {
  if (!text.endsWith("=")) return null;
  const open = text.lastIndexOf("<<");
  if (open < 0 || text.indexOf(">>", open) >= 0) return null;
  const expression = text.slice(open + 2, -1);
  if (expression.length === 0 || expression.length > MAX_EXPRESSION_LENGTH) return null;
  if (!EXPRESSION_CHARS.test(expression)) return null;
  return expression;
}

/** The text the calculator forces after `<<expr=`: the result and `>>`, or null when it has no result. */
export function calculatorCompletion(expression: string): string | null {
  const r = evaluate(expression);
  return r.ok ? `${formatResult(r.value)}>>` : null;
}
