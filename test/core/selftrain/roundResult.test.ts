import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RunStore } from "../../../src/core/store/runStore";
import { roundResult } from "../../../src/core/selftrain/roundResult";
import { tempDir } from "../../helpers/paths";

const summary = (round: number, dev: number | null, test: number | null): string =>
  JSON.stringify({ kind: "round", v: 2, runId: "r", round, mode: "dpo-st", time: "2026-12-06T00:00:00Z", engine: "onnxruntime", device: "cpu", devAccuracy: dev, testAccuracy: test, k: 1, wallMs: 1 }) + "\n";

test("roundResult: a round's greedy accuracy beside the round before's; the warm-up (round 0) has none before it", async (t) => {
  const ws = tempDir(t, "sts-result-");
  const store = await RunStore.create(join(ws, ".selftrain"), { mode: "dpo-st" });
  for (const [round, text] of [[0, summary(0, 0.2, 0.0625)], [1, summary(1, 0.3, 0.0375)], [2, summary(2, 0.5, null)]] as const) {
    mkdirSync(store.roundDir(round), { recursive: true });
    writeFileSync(store.path(round, "metrics.jsonl"), text);
  }
  assert.deepEqual(await roundResult(ws, store.runId, 0), { split: "test", accuracy: 0.0625, previous: null });
  assert.deepEqual(await roundResult(ws, store.runId, 1), { split: "test", accuracy: 0.0375, previous: 0.0625 });
  // No test set in round 2's summary: dev, on both sides.
  assert.deepEqual(await roundResult(ws, store.runId, 2), { split: "dev", accuracy: 0.5, previous: 0.3 });
  // A round with no summary yet.
  assert.deepEqual(await roundResult(ws, store.runId, 3), { split: "dev", accuracy: null, previous: 0.5 });
});
