import { test } from "node:test";
import assert from "node:assert/strict";
import { JobProgress } from "../../src/shared/jobProgress";
import { formatRoundResult } from "../../src/shared/roundResult";
import type { WorkerEvent } from "../../src/shared/workerProtocol";

const id = "job";

test("JobProgress: from the first second to the last step the notification says what is happening, and never lags the stage", () => {
  const p = new JobProgress("Self-training round");
  assert.equal(p.message, "starting the engine process…");
  const seen: string[] = [];
  const feed = (e: WorkerEvent): void => {
    if (p.event(e)) seen.push(`${p.message} | ${p.status}`);
  };
  feed({ type: "log", id, level: "info", message: "run 2026-12-06-a (dpo-st): through round 1" });
  feed({ type: "stage", id, round: 1, stage: "sample-dpo", state: "running" });
  feed({ type: "log", id, level: "info", message: "round 1 sample-dpo: resuming after 16 of 40 questions (32 samples kept)" });
  feed({ type: "progress", id, round: 1, stage: "sample-dpo", done: 40, total: 40, etaMs: 0 });
  feed({ type: "stage", id, round: 1, stage: "sample-dpo", state: "done" });
  feed({ type: "stage", id, round: 1, stage: "pairs", state: "running" });
  feed({ type: "stage", id, round: 1, stage: "dpo", state: "running" });
  feed({ type: "progress", id, round: 1, stage: "dpo", done: 8, total: 24, etaMs: 20_000, unit: "reference pairs" });
  feed({ type: "log", id, level: "warn", message: "something the host shows as a warning" });
  feed({ type: "stage", id, round: 1, stage: "eval", state: "running" });
  feed({ type: "progress", id, round: 1, stage: "eval", done: 64, total: 80, etaMs: 15_000, unit: "test questions" });
  assert.deepEqual(seen, [
    "run 2026-12-06-a (dpo-st): through round 1 | Self-training round",
    "Round 1 · Sampling for DPO: loading the model and building the engine… | Round 1 · sampling for DPO",
    "Round 1 · Sampling for DPO: resuming after 16 of 40 questions (32 samples kept) | Round 1 · sampling for DPO",
    "Round 1 · Sampling for DPO 40/40 | Round 1 · sampling for DPO 100%",
    "Round 1 · Sampling for DPO: done | Round 1 · sampling for DPO 100%",
    "Round 1 · Building pairs… | Round 1 · building pairs",
    "Round 1 · DPO: loading the model and building the engine… | Round 1 · DPO",
    "Round 1 · DPO 8/24 reference pairs · ETA 20 s | Round 1 · DPO 33%",
    "Round 1 · Evaluation: loading the model and building the engine… | Round 1 · evaluation",
    "Round 1 · Evaluation 64/80 test questions · ETA 15 s | Round 1 · evaluation 80%",
  ]);
  assert.equal(p.event({ type: "log", id, level: "warn", message: "x" }), false, "a warning does not replace the line");
});

test("formatRoundResult: the change in points, or what is known", () => {
  assert.equal(formatRoundResult({ split: "test", accuracy: 0.0375, previous: 0.0625 }), "test accuracy 6.3% → 3.8% (−2.5 points)");
  assert.equal(formatRoundResult({ split: "dev", accuracy: 0.5, previous: 0.25 }), "dev accuracy 25.0% → 50.0% (+25.0 points)");
  assert.equal(formatRoundResult({ split: "test", accuracy: 0.4, previous: null }), "test accuracy 40.0%");
  assert.equal(formatRoundResult({ split: "dev", accuracy: null, previous: null }), "no accuracy (no test or dev questions)");
});
