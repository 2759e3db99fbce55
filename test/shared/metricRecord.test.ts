import { test } from "node:test";
import assert from "node:assert/strict";
import { readMetricRecord, METRICS_FORMAT_VERSION } from "../../src/shared/metricRecord";

test("a metrics record of format 1 (no v, no run id, old names) reads as the same typed record as format 2", () => {
  const v1Step = { kind: "train", round: 1, stage: "dpo", step: 3, totalSteps: 40, engine: "onnxruntime", device: "cpu", loss: 0.69, learning_rate: 1e-5, grad_norm: 2, tokens: 800, tokens_per_second: 4000, elapsed_ms: 600, "rewards/chosen": 0.1, "rewards/accuracies": null };
  const v2Step = { kind: "train", v: 2, runId: "r", round: 1, stage: "dpo", step: 3, totalSteps: 40, engine: "onnxruntime", device: "cpu", loss: 0.69, learning_rate: 1e-5, grad_norm: 2, tokens: 800, tokensPerSecond: 4000, elapsedMs: 600, "rewards/chosen": 0.1, "rewards/accuracies": null };
  const a = readMetricRecord(v1Step, "r");
  const b = readMetricRecord(v2Step, "elsewhere");
  assert.deepEqual({ ...a, v: 0 }, { ...b, v: 0 });
  assert.equal(a?.v, 1);
  assert.equal(b?.v, METRICS_FORMAT_VERSION);
  assert.equal(b?.runId, "r", "the record's own run id wins over the file's");
  assert.ok(a?.kind === "train" && a["rewards/accuracies"] === null && a["rewards/margins"] === undefined, "written-but-not-finite is null, absent is undefined");

  const v1Round = { kind: "round", round: 2, mode: "dpo-st", time: "2026-11-25T10:00:00Z", engine: "tfjs", device: "cpu", "accuracy/dev": 0.5, "accuracy/test": 0.25, "pass@k/dev": 0.75, "pass@k/test": 0.5, k: 4, pairs: 10, wallMs: 1000 };
  const r = readMetricRecord(v1Round, "r");
  assert.ok(r?.kind === "round");
  assert.deepEqual([r.devAccuracy, r.testAccuracy, r.devPassAtK, r.testPassAtK, r.k, r.pairs, r.wallMs, r.pseudoLabels], [0.5, 0.25, 0.75, 0.5, 4, 10, 1000, null]);
  assert.equal(r.mode, "dpo-st");
});

test("a record that claims a kind but cannot be used is refused with the reason; other kinds are not metrics", () => {
  assert.equal(readMetricRecord({ kind: "note", text: "x" }, "r"), null);
  assert.throws(() => readMetricRecord({ kind: "train", round: 1, stage: "rlhf", step: 1 }, "r"), /"stage" must be one of warmup, dpo, sft, got "rlhf"/);
  assert.throws(() => readMetricRecord({ kind: "train", round: -1, stage: "sft", step: 1 }, "r"), /"round" must be a whole number ≥ 0, got -1/);
  assert.throws(() => readMetricRecord([1], "r"), /must be an object/);
});
