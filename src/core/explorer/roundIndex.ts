import { existsSync } from "node:fs";
import { readJsonl, eachJsonl } from "../store/jsonl";
import type { RunStore } from "../store/runStore";
import { pairKey, type ReviewLog } from "../store/reviewLog";
import { dropReason, pairFate, sampleUse, type PairFate } from "../store/pairFate";
import type { SampleRecord, PairRecord, PseudoLabelRecord } from "../../shared/runTypes";

/** The explorer's groups of a round's questions: by the answer check on the first sampling step (these three
 * partition the questions), and two that overlap them: those a person decided and those with pseudo-labels. */
export type QuestionGroup = "mixed" | "all-wrong" | "all-right" | "decided" | "pseudo-labels";
export type SampleRole = "chosen" | "rejected" | "pseudo-label";

/** What the explorer shows of one sample; the full rationale stays on disk until it is opened. */
export interface SampleSummary {
  hash: string;
  index: number;
  /** Which sampling step of the round wrote it: the DPO step's (pairs) or the SFT step's (pseudo-labels). */
  stage: "dpo" | "sft";
  /** After a person's verdict, when there is one. */
  correct: boolean;
  /** What the answer check said. */
  autoCorrect: boolean;
  answer: number | null;
  arithmeticErrors: number;
  /** Its roles in this round's files. */
  roles: SampleRole[];
  /**
   * Its badges as the next round will use it, after a person's decisions (review/pairFate.ts, as the review says
   * it): the roles still in force, and "positive next round" / "negative next round" / "left out next round"
   * where a decision changed it. The same as `roles` while nobody decided anything about it.
   */
  next: string[];
  /** Why `next` differs from `roles`, one sentence per change; empty when it does not. */
  nextWhy: string[];
  decided: "correct" | "wrong" | "excluded" | null;
  preview: string;
}

export interface QuestionSummary {
  questionId: string;
  question: string;
  gold: number;
  /** The samples the groups and the review's filters judge by: the round's first sampling step (`samplesFile`). */
  samples: SampleSummary[];
  right: number;
  /** The SFT step's samples of a DPO round (the pseudo-labels are chosen from them); empty otherwise. */
  sftSamples: SampleSummary[];
  /** Pseudo-labels kept for this question. */
  pseudoLabels: number;
  /** A person decided something about it: a verdict, an exclusion, a pair, a rationale. */
  decided: boolean;
  group: Exclude<QuestionGroup, "decided" | "pseudo-labels">;
}

export interface RoundIndex {
  round: number;
  /** Which samples file the explorer shows: the DPO step's, or the SFT step's in plain self-training. */
  samplesFile: "samples-dpo.jsonl" | "samples-sft.jsonl";
  questions: QuestionSummary[];
  /** Questions per group ("pseudo-labels": questions with at least one), and the round's records. */
  counts: Record<QuestionGroup, number> & { samples: number; sftSamples: number; pairs: number; pseudoLabels: number };
  /**
   * Where the round's pairs come from, per answer-check group of their question: `pairs` of them, of which
   * `sampleChosen` have one of this round's samples as the chosen side (the rest: the gold rationale, an earlier
   * round's sample or a person's rationale). A question with no right sample still has gold ≻ sample pairs.
   */
  pairsBy: Record<Exclude<QuestionGroup, "decided" | "pseudo-labels">, { pairs: number; sampleChosen: number }>;
}

const PREVIEW = 240;

/**
 * Builds the explorer's view of a round from its files and the review log. Reading streams line by line
 * (so a 50,000-sample round never holds the event loop for long) and keeps only summaries.
 */
export async function buildRoundIndex(store: RunStore, round: number, reviews: ReviewLog): Promise<RoundIndex> {
  const samplesFile = existsSync(store.path(round, "samples-dpo.jsonl")) ? "samples-dpo.jsonl" : "samples-sft.jsonl";
  const effective = reviews.effective();
  const verdicts = reviews.sampleVerdicts(effective);
  const excluded = reviews.excludedSamples(effective);
  const { hashes: touched, questions: touchedQuestions } = reviews.touched(effective);
  const roles = new Map<string, SampleRole[]>();
  const addRole = (hash: string, role: SampleRole): void => {
    const list = roles.get(hash) ?? [];
    if (!list.includes(role)) list.push(role);
    roles.set(hash, list);
  };
  const decisions = { verdicts, excluded, excludedPairs: reviews.excludedPairs(effective), forced: new Set(reviews.forcedPairs(effective).map((f) => pairKey(f.chosenHash, f.rejectedHash))) };
  const pairs = (await readJsonl<PairRecord>(store.path(round, "pairs.jsonl"))).records;
  /** Each sample's sides in this round's pairs, with what the next round does with each pair. */
  const sides = new Map<string, Array<{ role: "chosen" | "rejected"; fate: PairFate; other: string }>>();
  const addSide = (hash: string, role: "chosen" | "rejected", fate: PairFate, other: string): void => {
    const list = sides.get(hash) ?? [];
    list.push({ role, fate, other });
    sides.set(hash, list);
  };
  for (const p of pairs) {
    addRole(p.chosenHash, "chosen");
    addRole(p.rejectedHash, "rejected");
    const fate = pairFate(p, decisions);
    addSide(p.chosenHash, "chosen", fate, p.rejectedHash);
    addSide(p.rejectedHash, "rejected", fate, p.chosenHash);
  }
  const labels = (await readJsonl<PseudoLabelRecord>(store.path(round, "pseudo-labels.jsonl"))).records;
  for (const l of labels) addRole(l.hash, "pseudo-label");

  const pseudo = new Map<string, number>();
  for (const l of labels) pseudo.set(l.questionId, (pseudo.get(l.questionId) ?? 0) + 1);

  const byQuestion = new Map<string, QuestionSummary>();
  const summary = (s: SampleRecord, stage: "dpo" | "sft"): SampleSummary => {
    const verdict = verdicts.get(s.hash);
    const ownRoles = roles.get(s.hash) ?? [];
    return {
      hash: s.hash,
      index: s.index,
      stage,
      correct: verdict ? verdict === "correct" : s.correct,
      autoCorrect: s.correct,
      answer: s.answer,
      arithmeticErrors: s.arithmeticErrors,
      roles: ownRoles,
      next: [], // after all samples are read (nextUse names the other side of a pair)
      nextWhy: [],
      decided: excluded.has(s.hash) ? "excluded" : verdict ?? null,
      preview: s.rationale.length > PREVIEW ? `${s.rationale.slice(0, PREVIEW)}…` : s.rationale,
    };
  };
  const questionOf = (s: SampleRecord): QuestionSummary => {
    let q = byQuestion.get(s.questionId);
    if (!q) {
      q = { questionId: s.questionId, question: s.question, gold: s.gold, samples: [], right: 0, sftSamples: [], pseudoLabels: pseudo.get(s.questionId) ?? 0, decided: touchedQuestions.has(s.questionId), group: "all-wrong" };
      byQuestion.set(s.questionId, q);
    }
    if (touched.has(s.hash)) q.decided = true;
    return q;
  };
  let samples = 0;
  await eachJsonl<SampleRecord>(store.path(round, samplesFile), (s) => {
    samples++;
    const q = questionOf(s);
    const sum = summary(s, samplesFile === "samples-dpo.jsonl" ? "dpo" : "sft");
    q.samples.push(sum);
    if (sum.correct) q.right++;
  });
  // A DPO round's second sampling step, which the pseudo-labels come from: shown beside the first.
  let sftSamples = 0;
  if (samplesFile === "samples-dpo.jsonl" && existsSync(store.path(round, "samples-sft.jsonl"))) {
    await eachJsonl<SampleRecord>(store.path(round, "samples-sft.jsonl"), (s) => {
      sftSamples++;
      questionOf(s).sftSamples.push(summary(s, "sft"));
    });
  }
  const counts = { mixed: 0, "all-wrong": 0, "all-right": 0, decided: 0, samples, sftSamples, pairs: pairs.length, pseudoLabels: labels.length, "pseudo-labels": 0 };
  const names = new Map<string, string>();
  for (const q of byQuestion.values()) for (const smp of [...q.samples, ...q.sftSamples]) names.set(smp.hash, sampleLabel(smp));
  const label = (hash: string): string => names.get(hash) ?? "the gold rationale or an earlier one";
  for (const q of byQuestion.values()) {
    for (const smp of [...q.samples, ...q.sftSamples]) {
      const { next, why } = nextUse(smp, sides.get(smp.hash) ?? [], sampleUse(smp.hash, smp.autoCorrect, decisions), verdicts.get(smp.hash) ?? null, label);
      smp.next = next;
      smp.nextWhy = why;
    }
  }
  const pairsBy = { mixed: { pairs: 0, sampleChosen: 0 }, "all-wrong": { pairs: 0, sampleChosen: 0 }, "all-right": { pairs: 0, sampleChosen: 0 } };
  const sampled = new Set<string>();
  for (const q of byQuestion.values()) {
    for (const smp of [...q.samples, ...q.sftSamples]) sampled.add(smp.hash);
    q.group = q.right === 0 ? "all-wrong" : q.right === q.samples.length ? "all-right" : "mixed";
    counts[q.group]++;
    if (q.decided) counts.decided++;
    if (q.pseudoLabels > 0) counts["pseudo-labels"]++;
  }
  for (const p of pairs) {
    const q = byQuestion.get(p.questionId);
    if (!q) continue;
    pairsBy[q.group].pairs++;
    if (sampled.has(p.chosenHash)) pairsBy[q.group].sampleChosen++;
  }
  return { round, samplesFile, questions: [...byQuestion.values()], counts, pairsBy };
}

/**
 * A sample's badges for the next round: a role stands while one of its pairs still stands (a swap turns it round),
 * a pseudo-label while the sample is still a positive; a decision that changed its side says so.
 */
function nextUse(
  s: SampleSummary,
  sides: ReadonlyArray<{ role: "chosen" | "rejected"; fate: PairFate; other: string }>,
  use: "left out" | "positive" | "negative",
  verdict: "correct" | "wrong" | null,
  label: (hash: string) => string,
): { next: string[]; why: string[] } {
  const roles = s.roles;
  if (use === "left out") return { next: ["left out next round"], why: ["You excluded it: the next round trains on no pair or pseudo-label with it."] };
  const next: string[] = [];
  const why: string[] = [];
  const keep = (r: string): void => {
    if (!next.includes(r)) next.push(r);
  };
  for (const role of ["chosen", "rejected"] as const) {
    const mine = sides.filter((x) => x.role === role);
    if (mine.length === 0) continue;
    const standing = mine.filter((x) => x.fate.status === "built" || x.fate.status === "set");
    const swapped = mine.filter((x) => x.fate.status === "swapped");
    if (standing.length > 0) keep(role);
    if (swapped.length > 0) keep(role === "chosen" ? "rejected" : "chosen");
    if (standing.length === 0 && swapped.length === 0) {
      const dropped = mine.find((x) => x.fate.status === "dropped");
      const fate = dropped?.fate;
      // The reason names the side the decision was on: this sample, or the other side of the pair.
      const side = fate?.status === "dropped" ? (fate.side === role ? label(s.hash) : label(dropped!.other)) : "";
      why.push(`${role === "chosen" ? "Chosen" : "Rejected"} in this round's pairs; next round not: ${fate?.status === "dropped" ? dropReason(fate, side) : "you excluded the pair"}.`);
    } else if (swapped.length > 0) why.push(`You swapped a pair it was ${role} in.`);
  }
  if (roles.includes("pseudo-label")) {
    if (use === "positive") keep("pseudo-label");
    else why.push("A pseudo-label this round; not next round: you marked it wrong.");
  }
  // A verdict that turned the answer check round changes which side of the next round's pairs it can be on.
  if (verdict !== null && (verdict === "correct") !== s.autoCorrect) {
    next.push(use === "positive" ? "positive next round" : "negative next round");
    why.push(`You marked it ${verdict === "correct" ? "right" : "wrong"}: the next round pairs it as a ${use === "positive" ? "chosen" : "rejected"} side.`);
  }
  return { next, why };
}

/** "sample 3", "SFT-step sample 2": as the explorer and the review name a sample. */
function sampleLabel(s: SampleSummary): string {
  return s.stage === "dpo" ? `sample ${s.index + 1}` : `SFT-step sample ${s.index + 1}`;
}

export function questionsIn(index: RoundIndex, group: QuestionGroup): QuestionSummary[] {
  return index.questions.filter((q) => (group === "decided" ? q.decided : group === "pseudo-labels" ? q.pseudoLabels > 0 : q.group === group));
}

/** The answer check and the arithmetic check disagree: a right final answer reached with wrong arithmetic. */
export function disagrees(samples: ReadonlyArray<{ autoCorrect: boolean; arithmeticErrors: number }>): boolean {
  return samples.some((s) => s.autoCorrect && s.arithmeticErrors > 0);
}
