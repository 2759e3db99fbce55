/**
 * The records of metrics.jsonl, one type from the writer (the round runner) to every reader (the CLI, the
 * dashboard, the explorer, live metric events). Our own keys are camelCase; the training metrics keep the names
 * TRL logs them under (loss, learning_rate, grad_norm, rewards/…, logps/…), so the curves read like TRL's.
 */
import { isRecord } from "./messageGuards";
import type { RunMode } from "./runTypes";

/**
 * 2: every record carries `v`, its run id and the names below. Records without `v` are format 1 (written before
 * November 2026: "accuracy/dev", "pass@k/test", tokens_per_second, elapsed_ms, no run id) and read the same.
 */
export const METRICS_FORMAT_VERSION = 2;

/** The stages that train, and so log one record per optimiser step. */
export type TrainStage = "warmup" | "dpo" | "sft";
export const TRAIN_STAGES: readonly TrainStage[] = ["warmup", "dpo", "sft"];

/** Per-step metrics the dashboard charts: TRL's names, and our tokensPerSecond. */
export const STEP_METRICS = [
  "loss",
  "learning_rate",
  "grad_norm",
  "tokensPerSecond",
  "rewards/chosen",
  "rewards/rejected",
  "rewards/margins",
  "rewards/accuracies",
  "logps/chosen",
  "logps/rejected",
] as const;
export type StepMetric = (typeof STEP_METRICS)[number];

/** The DPO metrics under TRL's names (the loss is `loss`). */
export const DPO_STEP_METRICS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"] as const;

/** A metric that was not a finite number is null (JSON has no NaN or Infinity). */
type Metric = number | null;

/** The numbers of one step; the writer always writes the first six, the DPO ones for DPO steps only. */
const STEP_VALUES = ["loss", "learning_rate", "grad_norm", "tokens", "tokensPerSecond", "elapsedMs", ...DPO_STEP_METRICS] as const;

/**
 * One optimiser step of a training stage. A metric that is absent is undefined; one that was written but is not a
 * finite number (NaN, Infinity: JSON writes them as null) is null, which the dashboard reports.
 */
export interface TrainStepRecord extends Partial<Record<(typeof STEP_VALUES)[number], Metric>> {
  kind: "train";
  v: number;
  runId: string;
  round: number;
  stage: TrainStage;
  step: number;
  totalSteps: number | null;
  engine: string | null;
  device: string | null;
  /** Why engine.name "auto" took this engine because the faster one could not start; null when it did not fall back. */
  engineFallback: string | null;
}

/** A round's numbers, under the names the rounds table, the eval stage's counts and the CLI use. */
export interface RoundSummary {
  devAccuracy: Metric;
  testAccuracy: Metric;
  devPassAtK: Metric;
  testPassAtK: Metric;
  k: Metric;
  samples: Metric;
  positives: Metric;
  negatives: Metric;
  pairs: Metric;
  pseudoLabels: Metric;
  distinctPerQuestion: Metric;
  rewardAccuracy: Metric;
  rewardMargin: Metric;
  tokensPerSecond: Metric;
  wallMs: Metric;
}

export const ROUND_SUMMARY_KEYS: readonly (keyof RoundSummary)[] = [
  "devAccuracy", "testAccuracy", "devPassAtK", "testPassAtK", "k", "samples", "positives", "negatives", "pairs",
  "pseudoLabels", "distinctPerQuestion", "rewardAccuracy", "rewardMargin", "tokensPerSecond", "wallMs",
];

/** The record a round's evaluation appends: the summary of the whole round. */
export interface RoundSummaryRecord extends RoundSummary {
  kind: "round";
  v: number;
  runId: string;
  round: number;
  mode: RunMode | null;
  time: string | null;
  engine: string | null;
  device: string | null;
  engineFallback: string | null;
}

export type MetricRecord = TrainStepRecord | RoundSummaryRecord;

/** Format 1's names for what format 2 calls otherwise. */
const V1_NAMES: Readonly<Record<string, string>> = {
  "accuracy/dev": "devAccuracy",
  "accuracy/test": "testAccuracy",
  "pass@k/dev": "devPassAtK",
  "pass@k/test": "testPassAtK",
  tokens_per_second: "tokensPerSecond",
  elapsed_ms: "elapsedMs",
};

function metric(v: unknown): Metric {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function text(v: unknown): string | null {
  return typeof v === "string" && v.length > 0 ? v : null;
}

function wholeNumber(raw: Record<string, unknown>, key: string): number {
  const v = raw[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new Error(`"${key}" must be a whole number ≥ 0, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
}

/**
 * One metrics.jsonl line (or live metric event), of either format, as a typed record. `runId` is the run the
 * file belongs to (format 1 records do not say). Null for a kind that is not a metric record; throws, with the
 * reason, for a record that claims a kind but lacks what makes it usable.
 */
export function readMetricRecord(value: unknown, runId: string): MetricRecord | null {
  if (!isRecord(value)) throw new Error("a metrics record must be an object");
  if (value["kind"] !== "train" && value["kind"] !== "round") return null;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) raw[V1_NAMES[k] ?? k] = v;
  const round = wholeNumber(raw, "round");
  const common = { v: typeof raw["v"] === "number" ? raw["v"] : 1, runId: text(raw["runId"]) ?? runId, round, engine: text(raw["engine"]), device: text(raw["device"]), engineFallback: text(raw["engineFallback"]) };
  if (raw["kind"] === "round") {
    const summary = Object.fromEntries(ROUND_SUMMARY_KEYS.map((k) => [k, metric(raw[k])])) as unknown as RoundSummary;
    const mode = raw["mode"] === "dpo-st" || raw["mode"] === "st" ? raw["mode"] : null;
    return { kind: "round", ...common, mode, time: text(raw["time"]), ...summary };
  }
  const stage = raw["stage"];
  if (!(TRAIN_STAGES as readonly unknown[]).includes(stage)) throw new Error(`"stage" must be one of ${TRAIN_STAGES.join(", ")}, got ${JSON.stringify(stage)?.slice(0, 60)}`);
  const record: TrainStepRecord = { kind: "train", ...common, stage: stage as TrainStage, step: wholeNumber(raw, "step"), totalSteps: metric(raw["totalSteps"]) };
  for (const k of STEP_VALUES) if (raw[k] !== undefined) record[k] = metric(raw[k]);
  return record;
}
