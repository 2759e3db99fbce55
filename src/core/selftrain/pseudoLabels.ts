import { deduplicate, DUPLICATE_THRESHOLD } from "./similarity";
import type { HumanDecisions } from "./humanView";
import type { PseudoLabelRecord, SampleRecord } from "../../shared/runTypes";

export interface PseudoLabelSettings {
  /** Cap per question at this percentile of per-question counts (paper: 90). */
  capPercentile: number;
  duplicateThreshold?: number;
}

export interface PseudoLabelResult {
  labels: PseudoLabelRecord[];
  counts: { candidates: number; correct: number; afterDedup: number; cap: number; kept: number; human: number; questions: number };
}

/** Nearest-rank percentile of a list of counts (0 for an empty list). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * The SFT step's pseudo-labels (method.md, step 6): correct samples of the DPO model (a person's verdict wins
 * over the answer check; excluded ones are left out), de-duplicated per question against the gold rationale
 * and the pool of earlier rounds, pooled with it, and capped per question at a percentile of per-question
 * counts. Hand-written rationales are always kept and never cut by the cap.
 */
export function selectPseudoLabels(
  samples: readonly SampleRecord[],
  earlier: readonly PseudoLabelRecord[],
  gold: ReadonlyMap<string, string>,
  human: HumanDecisions,
  round: number,
  s: PseudoLabelSettings,
): PseudoLabelResult {
  const threshold = s.duplicateThreshold ?? DUPLICATE_THRESHOLD;
  const isCorrect = (hash: string, auto: boolean): boolean => human.verdicts.get(hash) === "correct" || (human.verdicts.get(hash) !== "wrong" && auto);
  const byQuestion = new Map<string, { human: PseudoLabelRecord[]; pool: PseudoLabelRecord[] }>();
  const slot = (q: string): { human: PseudoLabelRecord[]; pool: PseudoLabelRecord[] } => {
    let v = byQuestion.get(q);
    if (!v) byQuestion.set(q, (v = { human: [], pool: [] }));
    return v;
  };
  for (const a of human.added) {
    if (!human.excluded.has(a.hash)) slot(a.questionId).human.push({ questionId: a.questionId, question: a.question, hash: a.hash, rationale: a.rationale, source: "human", round });
  }
  // Earlier rounds' labels stay in the pool unless a person has since excluded or marked them wrong.
  for (const e of earlier) if (e.source === "automatic" && !human.excluded.has(e.hash) && isCorrect(e.hash, true)) slot(e.questionId).pool.push(e);
  let correct = 0;
  const fresh = new Map<string, PseudoLabelRecord[]>();
  for (const smp of samples) {
    if (human.excluded.has(smp.hash) || !isCorrect(smp.hash, smp.correct)) continue;
    correct++;
    const list = fresh.get(smp.questionId) ?? [];
    list.push({ questionId: smp.questionId, question: smp.question, hash: smp.hash, rationale: smp.rationale, source: "automatic", round });
    fresh.set(smp.questionId, list);
    slot(smp.questionId);
  }
  const perQuestion = new Map<string, PseudoLabelRecord[]>();
  for (const [q, v] of byQuestion) {
    const seen = [gold.get(q) ?? "", ...v.human.map((h) => h.rationale)].filter((t) => t.length > 0);
    const pooled = deduplicate([...v.pool, ...(fresh.get(q) ?? [])], (r) => r.rationale, threshold, seen);
    perQuestion.set(q, pooled);
  }
  const afterDedup = [...perQuestion.values()].reduce((a, l) => a + l.length, 0);
  const cap = percentile([...perQuestion.values()].map((l) => l.length).filter((n) => n > 0), s.capPercentile);
  const labels: PseudoLabelRecord[] = [];
  let humanCount = 0;
  for (const [q, v] of byQuestion) {
    labels.push(...v.human);
    humanCount += v.human.length;
    labels.push(...perQuestion.get(q)!.slice(0, cap));
  }
  return {
    labels,
    counts: { candidates: samples.length, correct, afterDedup, cap, kept: labels.length, human: humanCount, questions: new Set(labels.map((l) => l.questionId)).size },
  };
}
