import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { acquireRunLock, withWorkspaceLock } from "../store/runLock";
import { RunStore } from "../store/runStore";
import { selftrainDir } from "./workspace";
import type { RunMode } from "../../shared/runTypes";

/**
 * A new run that starts from another run's finished warm-up: the same base model and round 0 (checkpoint,
 * evaluation, metrics), so plain self-training and DPO-augmented self-training can be compared from one
 * warm-up checkpoint, as the paper does. Nothing of the source run changes. The source may be in another
 * workspace (`fromWorkspace`), to try other settings from the same warm-up.
 */
export async function forkRun(workspace: string, fromRunId: string, mode: RunMode, runId?: string, fromWorkspace = workspace): Promise<RunStore> {
  const dir = selftrainDir(workspace);
  const from = await RunStore.open(selftrainDir(fromWorkspace), fromRunId);
  for (const stage of ["warmup", "eval"] as const) {
    if (from.stage(0, stage).state !== "done") throw new Error(`run ${fromRunId}: its warm-up (round 0 ${stage}) has not finished, so there is nothing to start from`);
  }
  // The new run's only writer while its warm-up is copied in: a round started meanwhile is refused. Created and
  // locked under the workspace lock, so a round choosing the newest run cannot take it before it is locked.
  const { to, lock } = await withWorkspaceLock(dir, async () => {
    const created = await RunStore.create(dir, { mode, ...(runId ? { runId } : {}) });
    return { to: created, lock: await acquireRunLock(created.dir, created.runId) };
  });
  try {
    cpSync(join(from.dir, "base"), join(to.dir, "base"), { recursive: true });
    cpSync(from.roundDir(0), to.roundDir(0), { recursive: true });
    // config.json is written last: it marks a complete checkpoint, one file or shards alike.
    if (!existsSync(join(to.checkpointDir(0, "warmup"), "config.json"))) throw new Error(`run ${fromRunId}: round 0 has no checkpoint to copy`);
    for (const stage of ["warmup", "eval"] as const) {
      const s = from.stage(0, stage);
      await to.setStage(0, stage, { ...s, state: "done" });
    }
  } finally {
    await lock.release();
  }
  return to;
}
