/**
 * Final-answer extraction and checking, as in method.md: the number after the last `####` (commas removed)
 * compared as a number with tolerance 1e-4. Data sets that end a rationale with `A: 72` (or "The answer is
 * 72") instead are read too, so a user's own set need not be rewritten.
 */

export const ANSWER_TOLERANCE = 1e-4;

const NUMBER = /[-−]?\s*\$?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+)/;

/**
 * Parses a number as written in a rationale: "$1,234.50", "-3", "45%", ".5", "−2" (Unicode minus).
 * Returns null for anything that is not a single number.
 */
export function parseNumber(text: string): number | null {
  let s = text.trim();
  if (s.length === 0 || s.length > 64) return null;
  s = s.replace(/−/g, "-").replace(/\s+/g, "");
  // Sentence punctuation after the number ("18.", "18,") is not part of it.
  s = s.replace(/[.,;:!?]+$/, "");
  let negative = false;
  if (s.startsWith("-")) {
    negative = true;
    s = s.slice(1);
  }
  s = s.replace(/^\$/, "").replace(/%$/, "");
  if (s.startsWith("-")) {
    // "$-5" is written now and then.
    negative = !negative;
    s = s.slice(1);
  }
  if (!/^(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$/.test(s) || s === "" || s === ".") {
    // Allow loose comma use ("1,00") only by removing commas when what is left is a plain number.
    const loose = s.replace(/,/g, "");
    if (!/^(?:\d+(?:\.\d+)?|\.\d+)$/.test(loose)) return null;
    s = loose;
  }
  const value = Number(s.replace(/,/g, ""));
  if (!Number.isFinite(value)) return null;
  return negative ? -value : value;
}

export interface FinalAnswer {
  /** The answer as written, e.g. "$1,200". */
  text: string;
  value: number;
  /** Which convention marked it. */
  marker: "####" | "A:" | "answer is";
}

/** The final answer of a rationale, or null when it has none. */
export function extractFinalAnswer(rationale: string): FinalAnswer | null {
  const hash = rationale.lastIndexOf("####");
  if (hash >= 0) {
    return numberAfter(rationale.slice(hash + 4), "####");
  }
  const a = /(?:^|\n)\s*A:\s*([^\n]*)\s*$/.exec(rationale);
  if (a) return numberAfter(a[1] as string, "A:");
  const phrase = /answer is:?\s*([^\n]*?)\s*\.?\s*$/i.exec(rationale);
  if (phrase) return numberAfter(phrase[1] as string, "answer is");
  return null;
}

function numberAfter(rest: string, marker: FinalAnswer["marker"]): FinalAnswer | null {
  const line = rest.split("\n", 1)[0] as string;
  const m = NUMBER.exec(line);
  if (!m) return null;
  // Keep a trailing percent sign in the written form; it does not change the value.
  const written = m[0].trim();
  const value = parseNumber(written);
  if (value === null) return null;
  return { text: written, value, marker };
}

/** True when two answers agree within the tolerance of method.md. */
export function answersMatch(a: number, b: number, tolerance = ANSWER_TOLERANCE): boolean {
  return Math.abs(a - b) <= tolerance;
}

/**
 * Checks a sampled rationale against the gold answer. A rationale with no readable final answer is wrong.
 */
export function isCorrect(rationale: string, gold: number): boolean {
  const found = extractFinalAnswer(rationale);
  return found !== null && answersMatch(found.value, gold);
}
