import { disagrees, type QuestionSummary, type RoundIndex } from "../explorer/roundIndex";
import { REVIEW_FILTERS, type ReviewFilter } from "../../shared/reviewProtocol";
import type { SampleRecord } from "../../shared/runTypes";


export function inFilter(q: QuestionSummary, filter: ReviewFilter): boolean {
  switch (filter) {
    case "all":
      return true;
    case "decided":
      return q.decided;
    case "disagreement":
      return disagrees(q.samples);
    default:
      return q.group === filter;
  }
}

/** The questions of a filter, in file order. */
export function reviewQueue(index: RoundIndex, filter: ReviewFilter): QuestionSummary[] {
  return index.questions.filter((q) => inFilter(q, filter));
}

/**
 * Where Next, Previous and First go in a filter's queue from the question shown: its neighbour in file order. The
 * shown question may have left the filter (a decision moved it out of "Mixed answers"): Next then goes to the
 * first question of the filter after it in the file, not back to the start. Returns an index into
 * `reviewQueue(index, filter)`, which may be −1 or its length at either end.
 */
export function neighbourInQueue(index: RoundIndex, filter: ReviewFilter, currentId: string | null, to: "next" | "prev" | "first"): number {
  const list = reviewQueue(index, filter);
  if (to === "first" || currentId === null) return 0;
  const at = list.findIndex((q) => q.questionId === currentId);
  if (at >= 0) return to === "next" ? at + 1 : at - 1;
  const fileAt = index.questions.findIndex((q) => q.questionId === currentId);
  if (fileAt < 0) return 0;
  // The queue keeps file order: count the filter's questions before the shown one.
  const before = index.questions.slice(0, fileAt).filter((q) => inFilter(q, filter)).length;
  return to === "next" ? before : before - 1;
}

export function filterCounts(index: RoundIndex): Record<ReviewFilter, number> {
  const counts = Object.fromEntries(REVIEW_FILTERS.map((f) => [f, 0])) as Record<ReviewFilter, number>;
  for (const q of index.questions) for (const f of REVIEW_FILTERS) if (inFilter(q, f)) counts[f]++;
  return counts;
}

/**
 * Whether a question's raw records (before the index exists) belong to a filter, with a person's verdicts
 * applied: the first question of a filter can be found by reading the file only up to it.
 */
export function recordsInFilter(records: readonly SampleRecord[], filter: ReviewFilter, verdicts: ReadonlyMap<string, "correct" | "wrong">, touched: (r: SampleRecord) => boolean): boolean {
  const right = records.filter((r) => (verdicts.get(r.hash) ?? (r.correct ? "correct" : "wrong")) === "correct").length;
  switch (filter) {
    case "all":
      return true;
    case "decided":
      return records.some(touched);
    case "disagreement":
      return disagrees(records.map((r) => ({ autoCorrect: r.correct, arithmeticErrors: r.arithmeticErrors })));
    case "mixed":
      return right > 0 && right < records.length;
    case "all-wrong":
      return right === 0;
    case "all-right":
      return right === records.length;
  }
}
