import type { StageName, StageState } from "../../shared/runTypes";
import type { MetricRecord } from "../../shared/metricRecord";

/** What the runner reports while it works; the worker process turns these into protocol events. */
export interface RunnerEvents {
  stage(e: { round: number; stage: StageName; state: StageState; counts?: Record<string, number>; error?: string }): void;
  progress(e: { round: number; stage: StageName; done: number; total: number; etaMs: number | null; unit?: string }): void;
  metric(record: MetricRecord): void;
  log(e: { level: "info" | "warn" | "error"; message: string }): void;
}
