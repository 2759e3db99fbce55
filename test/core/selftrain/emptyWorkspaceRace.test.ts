import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runRound } from "../../../src/core/selftrain/session";
import { selftrainDir } from "../../../src/core/selftrain/workspace";
import { RunStore } from "../../../src/core/store/runStore";
import { RunLockedError, lockPath } from "../../../src/core/store/runLock";
import { recorder, tinyWorkspace } from "../../helpers/workspace";
import { tempDir } from "../../helpers/paths";

test("two rounds started at once on a workspace without runs make one run; the second is refused naming the first", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  // Both start in the same tick (the barrier): each finds no run before either has made one, which is the race
  // two processes started at the same moment run into. The winner stops at its first step.
  const results = await Promise.allSettled([0, 1].map(() => runRound({ workspace: ws, round: 0, events: recorder(), shouldStop: () => true })));
  const runs = RunStore.list(selftrainDir(ws));
  assert.deepEqual(runs.length, 1, `runs made: ${runs.join(", ")}`);
  const refused = results.flatMap((r) => (r.status === "rejected" && r.reason instanceof RunLockedError ? [r.reason] : []));
  assert.equal(refused.length, 1, results.map((r) => (r.status === "rejected" ? String(r.reason) : "finished")).join("\n"));
  const [error] = refused;
  assert.equal(error!.runId, runs[0]);
  assert.equal(error!.owner.pid, process.pid, "the holder is named");
  assert.equal(error!.lockFile, lockPath(join(selftrainDir(ws), "runs", runs[0]!)));
  assert.match(error!.message, new RegExp(`run ${runs[0]} is in use by another self-training process \\(pid ${process.pid}, since `));
});
