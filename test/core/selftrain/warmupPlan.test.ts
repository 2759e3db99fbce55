import { test } from "node:test";
import assert from "node:assert/strict";
import { warmupPlan } from "../../../src/core/selftrain/workspace";
import type { RunManifest, StageName } from "../../../src/shared/runTypes";

const done = (...names: StageName[]) => Object.fromEntries(names.map((n) => [n, { state: "done" as const }]));
const ROUND: StageName[] = ["sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"];

function run(rounds: RunManifest["rounds"]): RunManifest {
  return { formatVersion: 1, runId: "2026-11-26-a", mode: "dpo-st", createdAt: "2026-11-26T10:00:00Z", rounds };
}

test("Run Warm-up: a new run when there is none, the unfinished warm-up resumed, and a finished run only replaced on request", () => {
  assert.deepEqual(warmupPlan(null), { action: "new" });
  assert.deepEqual(warmupPlan(run([])), { action: "resume", runId: "2026-11-26-a" });
  assert.deepEqual(warmupPlan(run([{ round: 0, stages: { warmup: { state: "cancelled" } } }])), { action: "resume", runId: "2026-11-26-a" });
  const finished = run([
    { round: 0, stages: done("warmup", "eval") },
    { round: 1, stages: done(...ROUND) },
    { round: 2, stages: done("sample-dpo") },
  ]);
  assert.deepEqual(warmupPlan(finished), { action: "ask", runId: "2026-11-26-a", rounds: 1 });
});
