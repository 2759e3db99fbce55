import { existsSync } from "node:fs";
import { readJsonl, eachJsonl } from "../store/jsonl";
import type { RunStore } from "../store/runStore";
import type { ReviewLog } from "../store/reviewLog";
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
  roles: SampleRole[];
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
  const pairs = (await readJsonl<PairRecord>(store.path(round, "pairs.jsonl"))).records;
  for (const p of pairs) {
    addRole(p.chosenHash, "chosen");
    addRole(p.rejectedHash, "rejected");
  }
  const labels = (await readJsonl<PseudoLabelRecord>(store.path(round, "pseudo-labels.jsonl"))).records;
  for (const l of labels) addRole(l.hash, "pseudo-label");

  const pseudo = new Map<string, number>();
  for (const l of labels) pseudo.set(l.questionId, (pseudo.get(l.questionId) ?? 0) + 1);

  const byQuestion = new Map<string, QuestionSummary>();
  const summary = (s: SampleRecord, stage: "dpo" | "sft"): SampleSummary => {
    const verdict = verdicts.get(s.hash);
    return {
      hash: s.hash,
      index: s.index,
      stage,
      correct: verdict ? verdict === "correct" : s.correct,
      autoCorrect: s.correct,
      answer: s.answer,
      arithmeticErrors: s.arithmeticErrors,
      roles: roles.get(s.hash) ?? [],
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
  for (const q of byQuestion.values()) {
    q.group = q.right === 0 ? "all-wrong" : q.right === q.samples.length ? "all-right" : "mixed";
    counts[q.group]++;
    if (q.decided) counts.decided++;
    if (q.pseudoLabels > 0) counts["pseudo-labels"]++;
  }
  return { round, samplesFile, questions: [...byQuestion.values()], counts };
}

export function questionsIn(index: RoundIndex, group: QuestionGroup): QuestionSummary[] {
  return index.questions.filter((q) => (group === "decided" ? q.decided : group === "pseudo-labels" ? q.pseudoLabels > 0 : q.group === group));
}
