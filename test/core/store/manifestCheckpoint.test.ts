// A training stage's record says in which types its checkpoint was written (float32 working weights, the
// source's type for export): an optional field, so manifests written before it open as they are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MANIFEST_FORMAT_VERSION, RunStore } from "../../../src/core/store/runStore";
import { tempDir } from "../../helpers/paths";

test("a stage's checkpoint types round-trip; a manifest without them opens; a bad one is refused naming the field", async (t) => {
  const root = tempDir(t);
  const store = await RunStore.create(root, { runId: "r", mode: "dpo-st" });
  const file = join(store.dir, "manifest.json");
  const old = { formatVersion: 1, runId: "r", mode: "dpo-st", createdAt: "2025-01-02T12:00:00.000Z", rounds: [{ round: 1, stages: { dpo: { state: "done", counts: { steps: 4 } } } }] };
  writeFileSync(file, JSON.stringify(old));
  const opened = await RunStore.open(root, "r");
  assert.deepEqual(opened.stage(1, "dpo"), { state: "done", counts: { steps: 4 } }, "written before the field: opens as it was");
  assert.equal(opened.manifest.formatVersion, MANIFEST_FORMAT_VERSION, "an optional field is no new format");

  await opened.setStage(1, "sft", { state: "done", checkpoint: { dtype: "float32", sourceDtype: "bfloat16" } });
  assert.deepEqual((await RunStore.open(root, "r")).stage(1, "sft").checkpoint, { dtype: "float32", sourceDtype: "bfloat16" });
  // A stage run again starts without the record of the attempt before.
  await opened.setStage(1, "sft", { state: "running", checkpoint: undefined });
  assert.equal((await RunStore.open(root, "r")).stage(1, "sft").checkpoint, undefined);

  const broken = async (checkpoint: unknown, expected: string): Promise<void> => {
    writeFileSync(file, JSON.stringify({ ...old, rounds: [{ round: 1, stages: { dpo: { state: "done", checkpoint } } }] }));
    await assert.rejects(RunStore.open(root, "r"), (e: Error) => e.message === `${file}: ${expected}`);
  };
  await broken("float32", "rounds[0].stages.dpo.checkpoint must be an object");
  await broken({ dtype: "float64", sourceDtype: "bfloat16" }, 'rounds[0].stages.dpo.checkpoint.dtype must be one of float32, bfloat16, float16, not "float64"');
  await broken({ dtype: "float32" }, "rounds[0].stages.dpo.checkpoint.sourceDtype must be one of float32, bfloat16, float16, not undefined");
});
