import { test } from "node:test";
import assert from "node:assert/strict";
import { asOnlyWriter } from "../../../src/core/selftrain/session";
import { selftrainDir } from "../../../src/core/selftrain/workspace";
import { RunStore } from "../../../src/core/store/runStore";
import { acquireRunLock } from "../../../src/core/store/runLock";
import { recorder, tinyWorkspace } from "../../helpers/workspace";
import { tempDir } from "../../helpers/paths";

test("the run's only writer reads the manifest under the lock: a writer that finished while it waited is seen", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const dir = selftrainDir(ws);
  const { runId } = await RunStore.create(dir, { mode: "dpo-st" });
  // What a second process knew of the run before it asked for the lock.
  const before = await RunStore.open(dir, runId);
  // Meanwhile the lock's holder finishes its warm-up and lets go.
  const holder = await RunStore.open(dir, runId);
  const lock = await acquireRunLock(holder.dir, runId);
  await holder.setStage(0, "warmup", { state: "done" });
  await lock.release();
  assert.notEqual(before.stage(0, "warmup").state, "done", "the early read predates the writer");

  const seen = await asOnlyWriter(ws, runId, recorder(), async (store) => store.stage(0, "warmup").state);
  assert.equal(seen, "done", "the writer's finished warm-up is what the next writer starts from");
});
