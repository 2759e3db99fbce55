/**
 * The records of the run store (.selftrain/), shared by the core, the engine, the CLI, the extension and the
 * webviews. Every file is JSON or JSON Lines that a person can read and `git diff`.
 */

/** A round's stages in the order they run (round 0 runs warmup and eval only); StageName is derived from it. */
export const STAGE_NAMES = ["warmup", "sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** How a stage is named to a person: progress, status bar, dashboard, warnings. */
export const STAGE_LABEL: Readonly<Record<StageName, string>> = {
  warmup: "Warm-up SFT", "sample-dpo": "Sampling for DPO", pairs: "Building pairs", dpo: "DPO", "sample-sft": "Sampling pseudo-labels",
  "pseudo-labels": "Selecting pseudo-labels", sft: "SFT", eval: "Evaluation",
};

/**
 * A stage's label, or the name itself for one this build does not know. `inSentence` lower-cases a capital that
 * only starts the label ("warm-up SFT", "sampling for DPO"; "DPO" stays).
 */
export function stageLabel(stage: string, inSentence = false): string {
  const label = (STAGE_LABEL as Readonly<Record<string, string>>)[stage] ?? stage;
  return inSentence && /^[A-Z][a-z]/.test(label) ? label[0]!.toLowerCase() + label.slice(1) : label;
}
export type StageState = "pending" | "running" | "done" | "failed" | "cancelled";

/** Weight types by the names config.json's torch_dtype gives them. */
export const TORCH_DTYPES = ["float32", "bfloat16", "float16"] as const;
export type TorchDtype = (typeof TORCH_DTYPES)[number];

/** The weight types of a training stage's checkpoint (warm-up, DPO, SFT). */
export interface StageCheckpoint {
  /**
   * The type the checkpoint keeps the working weights in: float32, whatever the source's, because most updates at
   * a pretrained model's learning rates are smaller than half a bf16 step and would vanish between stages.
   */
  dtype: TorchDtype;
  /** The source model's type: what `selftrain export` writes. */
  sourceDtype: TorchDtype;
}

export interface StageRecord {
  state: StageState;
  startedAt?: string;
  finishedAt?: string;
  /** One sentence, for failed stages. */
  error?: string;
  /** Counts the stage produced (samples, pairs, steps …). */
  counts?: Record<string, number>;
  /** While running: the process that runs it, so a reader can tell a live stage from one a kill interrupted. */
  pid?: number;
  /** While running: the machine of `pid` (a pid says nothing on another machine). Absent in runs of older versions. */
  host?: string;
  /** While running: `pid`'s start time (Linux clock ticks since boot), so a reused pid is not taken for it. */
  processStart?: string;
  /** A training stage, once done: the types its checkpoint was written in. Absent in runs of older versions. */
  checkpoint?: StageCheckpoint;
}

export interface RoundRecord {
  round: number;
  stages: Partial<Record<StageName, StageRecord>>;
}

export type RunMode = "dpo-st" | "st";

export interface RunManifest {
  formatVersion: number;
  runId: string;
  mode: RunMode;
  createdAt: string;
  /** Round 0 is the warm-up SFT; rounds 1… are iterations of the method. */
  rounds: RoundRecord[];
}

export interface CalculatorCallRecord {
  expression: string;
  forced: string | null;
}

/** One sampled rationale (samples-dpo.jsonl, samples-sft.jsonl, eval.jsonl). */
export interface SampleRecord {
  /** Content hash of question + rationale: the key human decisions attach to. */
  hash: string;
  questionId: string;
  question: string;
  rationale: string;
  /** Extracted final answer, or null when there is none. */
  answer: number | null;
  gold: number;
  correct: boolean;
  logProb: number;
  calculatorCalls: CalculatorCallRecord[];
  /** Annotations whose written result is not what the expression gives. */
  arithmeticErrors: number;
  finished: boolean;
  round: number;
  /** Sample index within the question for this stage. */
  index: number;
}

export type DecisionSource = "automatic" | "human";

/** A preference pair (pairs.jsonl). */
export interface PairRecord {
  questionId: string;
  question: string;
  chosenHash: string;
  rejectedHash: string;
  chosen: string;
  rejected: string;
  /** Token-set Jaccard similarity of the two rationales. */
  similarity: number;
  source: DecisionSource;
  round: number;
}

/** A pseudo-label kept for SFT (pseudo-labels.jsonl). */
export interface PseudoLabelRecord {
  questionId: string;
  question: string;
  hash: string;
  rationale: string;
  /** Where it came from: a sampled round, or a person's hand-written rationale. */
  source: DecisionSource;
  round: number;
}

/** A human decision (reviews.jsonl, append-only). Later decisions on the same target win; undo retracts one. */
export type ReviewDecision =
  | { kind: "mark"; verdict: "correct" | "wrong"; hash: string }
  | { kind: "exclude-sample"; hash: string }
  | { kind: "include-sample"; hash: string }
  | { kind: "force-pair"; questionId: string; chosenHash: string; rejectedHash: string }
  | { kind: "exclude-pair"; chosenHash: string; rejectedHash: string }
  /**
   * A rationale a person wrote. `unconfirmed` lists what the arithmetic check found wrong when it was saved: such a
   * rationale is kept (never lost) but is not a positive until a `confirm-rationale` for its hash.
   */
  | { kind: "add-rationale"; questionId: string; question: string; rationale: string; hash: string; unconfirmed?: string[] }
  /** The person confirms a hand-written rationale the arithmetic check questioned: it is used as written. */
  | { kind: "confirm-rationale"; hash: string }
  | { kind: "note"; hash: string; text: string }
  | { kind: "undo"; decisionId: string };

export type ReviewEntry = ReviewDecision & {
  /** Unique id of this entry. */
  id: string;
  /** ISO time. */
  at: string;
  note?: string;
};
