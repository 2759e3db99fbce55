import { checkArithmetic } from "../data/annotations";
import { isCorrect, parseNumber } from "../data/answerCheck";
import type { CalculatorCallRecord } from "../../shared/runTypes";
import type { RationaleSpan } from "../../shared/reviewProtocol";

/**
 * Splits a rationale into what the review shows: plain text, each `<<expr=result>>` checked by the calculator
 * (with the value it should have, when the written one is wrong, and whether the sampler forced it), and the
 * `#### N` line judged against the gold answer.
 */
export function rationaleSpans(rationale: string, gold: number, calls: readonly CalculatorCallRecord[] = []): RationaleSpan[] {
  const spans: RationaleSpan[] = [];
  const answerAt = rationale.lastIndexOf("####");
  const body = answerAt >= 0 ? rationale.slice(0, answerAt) : rationale;
  // Calls are matched to annotations in order, by expression: the sampler records one per `<<expr=` it met.
  const pending = calls.map((c) => ({ ...c, used: false }));
  let at = 0;
  for (const a of checkArithmetic(body)) {
    if (a.start > at) spans.push({ kind: "text", text: body.slice(at, a.start) });
    const call = pending.find((c) => !c.used && c.expression.trim() === a.expression.trim());
    if (call) call.used = true;
    const v = a.verdict;
    // GSM8K copies the result into the text right after `>>`: a different number there is a slip too.
    const copied = /^-?\d+(?:,\d{3})*(?:\.\d+)?/.exec(body.slice(a.end))?.[0];
    const copiedValue = copied === undefined ? null : parseNumber(copied);
    const writtenValue = parseNumber(a.written);
    const copyDiffers = copied !== undefined && copiedValue !== null && writtenValue !== null && Math.abs(copiedValue - writtenValue) > 1e-9 * Math.max(1, Math.abs(writtenValue));
    spans.push({
      kind: "calc",
      text: body.slice(a.start, a.end),
      expression: a.expression,
      written: a.written,
      status: v.kind,
      ...(v.kind === "wrong" ? { expected: v.expected } : {}),
      forced: call?.forced != null,
      ...(copyDiffers ? { copiedAs: copied } : {}),
    });
    at = a.end;
  }
  if (at < body.length) spans.push({ kind: "text", text: body.slice(at) });
  if (answerAt >= 0) {
    const end = rationale.indexOf("\n", answerAt);
    const line = end < 0 ? rationale.slice(answerAt) : rationale.slice(answerAt, end);
    spans.push({ kind: "answer", text: line, correct: isCorrect(line, gold) });
    if (end >= 0) spans.push({ kind: "text", text: rationale.slice(end) });
  }
  return spans;
}

/** Counts for the sample header: "calculator 2/3 ok, 1 forced". */
export function calcCounts(spans: readonly RationaleSpan[]): { total: number; ok: number; forced: number } {
  let total = 0, ok = 0, forced = 0;
  for (const s of spans) {
    if (s.kind !== "calc") continue;
    total++;
    if (s.status === "ok" && s.copiedAs === undefined) ok++;
    if (s.forced) forced++;
  }
  return { total, ok, forced };
}

/**
 * What the arithmetic check finds wrong in a rationale, one line each ("4/2 is 2, not 3"): the check a
 * hand-written rationale goes through when it is saved. Empty when every annotation is right.
 */
export function arithmeticProblems(spans: readonly RationaleSpan[]): string[] {
  const out: string[] = [];
  for (const s of spans) {
    if (s.kind !== "calc") continue;
    if (s.status === "wrong") out.push(`${s.expression} is ${s.expected}, not ${s.written}`);
    else if (s.status === "unparseable") out.push(`the calculator cannot read ${s.expression}`);
    else if (s.status === "bad-result") out.push(`${s.written} is not a number (in ${s.text})`);
    if (s.copiedAs !== undefined) out.push(`${s.text} is followed by ${s.copiedAs}, not ${s.written}`);
  }
  return out;
}
