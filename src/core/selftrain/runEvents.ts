import type { StageName, StageState } from "../../shared/runTypes";

/** One metrics.jsonl record: a training step (TRL's names), or a round summary. */
export type MetricRecord = { kind: "train" | "round"; round: number; stage?: string } & Record<string, string | number | null | undefined>;

/** What the runner reports while it works; the worker process turns these into protocol events. */
export interface RunnerEvents {
  stage(e: { round: number; stage: StageName; state: StageState; counts?: Record<string, number>; error?: string }): void;
  progress(e: { round: number; stage: StageName; done: number; total: number; etaMs: number | null }): void;
  metric(record: MetricRecord): void;
  log(e: { level: "info" | "warn" | "error"; message: string }): void;
}
