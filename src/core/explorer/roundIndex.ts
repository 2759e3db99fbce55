import { existsSync } from "node:fs";
import { readJsonl, eachJsonl } from "../store/jsonl";
import type { RunStore } from "../store/runStore";
import type { ReviewLog } from "../store/reviewLog";
import type { SampleRecord, PairRecord, PseudoLabelRecord } from "../../shared/runTypes";

export type QuestionGroup = "mixed" | "all-wrong" | "all-right" | "decided";
export type SampleRole = "chosen" | "rejected" | "pseudo-label";

/** What the explorer shows of one sample; the full rationale stays on disk until it is opened. */
export interface SampleSummary {
  hash: string;
  index: number;
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
  samples: SampleSummary[];
  right: number;
  /** A person decided something about it: a verdict, an exclusion, a pair, a rationale. */
  decided: boolean;
  group: Exclude<QuestionGroup, "decided">;
}

export interface RoundIndex {
  round: number;
  /** Which samples file the explorer shows: the DPO step's, or the SFT step's in plain self-training. */
  samplesFile: "samples-dpo.jsonl" | "samples-sft.jsonl";
  questions: QuestionSummary[];
  counts: Record<QuestionGroup, number> & { samples: number; pairs: number; pseudoLabels: number };
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

  const byQuestion = new Map<string, QuestionSummary>();
  let samples = 0;
  await eachJsonl<SampleRecord>(store.path(round, samplesFile), (s) => {
      samples++;
      let q = byQuestion.get(s.questionId);
      if (!q) byQuestion.set(s.questionId, (q = { questionId: s.questionId, question: s.question, gold: s.gold, samples: [], right: 0, decided: touchedQuestions.has(s.questionId), group: "all-wrong" }));
      const verdict = verdicts.get(s.hash);
      const correct = verdict ? verdict === "correct" : s.correct;
      q.samples.push({
        hash: s.hash,
        index: s.index,
        correct,
        autoCorrect: s.correct,
        answer: s.answer,
        arithmeticErrors: s.arithmeticErrors,
        roles: roles.get(s.hash) ?? [],
        decided: excluded.has(s.hash) ? "excluded" : verdict ?? null,
        preview: s.rationale.length > PREVIEW ? `${s.rationale.slice(0, PREVIEW)}…` : s.rationale,
      });
      if (correct) q.right++;
      if (touched.has(s.hash)) q.decided = true;
  });
  const counts = { mixed: 0, "all-wrong": 0, "all-right": 0, decided: 0, samples, pairs: pairs.length, pseudoLabels: labels.length };
  for (const q of byQuestion.values()) {
    q.group = q.right === 0 ? "all-wrong" : q.right === q.samples.length ? "all-right" : "mixed";
    counts[q.group]++;
    if (q.decided) counts.decided++;
  }
  return { round, samplesFile, questions: [...byQuestion.values()], counts };
}

export function questionsIn(index: RoundIndex, group: QuestionGroup): QuestionSummary[] {
  return index.questions.filter((q) => (group === "decided" ? q.decided : q.group === group));
}
