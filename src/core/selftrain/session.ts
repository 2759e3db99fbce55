import { existsSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { SelfTrainRunner } from "./runner";
import { roundStages } from "./stages";
import { RunStore } from "../store/runStore";
import { ReviewLog } from "../store/reviewLog";
import { acquireRunLock, withWorkspaceLock, type RunLock } from "../store/runLock";
import { readWorkspaceConfig, selftrainDir, nextRound, configPath } from "./workspace";
import { checkModelInit, needsBaseModel } from "./modelFiles";
import type { RunnerEvents } from "./runEvents";
import type { SelfTrainConfig } from "./configTypes";
import type { RunMode, StageName } from "../../shared/runTypes";


/**
 * The run to continue: the given one, else the newest, else a new one. Only its id is used before the lock.
 * Call it holding the workspace lock (asOnlyWriter does): "no run yet, so make one" must not be decided by two
 * processes at once.
 */
async function openOrCreate(workspace: string, runId: string | undefined, mode: RunMode, createNew: boolean): Promise<string> {
  const dir = selftrainDir(workspace);
  if (runId) return existsSync(join(dir, "runs", runId)) ? runId : (await RunStore.create(dir, { runId, mode })).runId;
  const newest = RunStore.newest(dir);
  return newest === null || createNew ? (await RunStore.create(dir, { mode })).runId : newest;
}

/**
 * Runs `work` as the run's only writer: takes the run's lock (a second process is refused, naming the holder),
 * clears what killed processes left behind, and only then reads the manifest, so `work` sees what every earlier
 * writer left (a manifest read before the lock could predate a writer that finished in between). The lock is
 * released however `work` ends.
 *
 * `run` may be a function that chooses (or creates) the run: it is called holding the workspace lock, which is
 * kept until the run's lock is taken. Two processes started at once on a workspace without runs then make one
 * run: the second waits the few milliseconds the first needs, finds its run, and is refused with the holder
 * named, as it is on a run that already existed (rather than waiting: a round takes hours, and a command that
 * silently waits that long looks hung).
 */
export async function asOnlyWriter<T>(workspace: string, run: string | (() => Promise<string>), events: RunnerEvents, work: (store: RunStore) => Promise<T>): Promise<T> {
  const dir = selftrainDir(workspace);
  const lockRun = async (runId: string): Promise<{ runId: string; lock: RunLock }> => ({ runId, lock: await acquireRunLock(join(dir, "runs", runId), runId) });
  const choose = run;
  const { runId, lock } = typeof choose === "string" ? await lockRun(choose) : await withWorkspaceLock(dir, async () => lockRun(await choose()));
  try {
    if (lock.tookOverFrom) events.log({ level: "info", message: `run ${runId}: the process that last held it (pid ${lock.tookOverFrom.pid}) is gone; taking over` });
    const removed = await RunStore.sweepLeftovers(dir, runId);
    if (removed.length > 0) events.log({ level: "info", message: `removed ${removed.length} leftover file(s) of interrupted writes: ${removed.map((p) => relative(workspace, p)).join(", ")}` });
    return await work(await RunStore.open(dir, runId));
  } finally {
    await lock.release();
  }
}

export interface RoundRequest {
  workspace: string;
  runId?: string;
  /** Run through this round; default: the next unfinished one (0 is the warm-up). */
  round?: number;
  newRun?: boolean;
  mode?: RunMode;
  /** Run this stage of the round and every later one again (e.g. rebuild pairs after a review). */
  restartFrom?: StageName;
  events: RunnerEvents;
  shouldStop: () => boolean;
}

/**
 * Whether the run openOrCreate will pick has no base model yet: a new run (none yet, --new-run, a --run id that
 * does not exist) or one whose warm-up never made it. Read without the workspace lock: a run another process
 * makes meanwhile only means a check that was not needed.
 */
function baseModelToMake(workspace: string, runId: string | undefined, createNew: boolean): boolean {
  const dir = selftrainDir(workspace);
  const target = runId ?? (createNew ? null : RunStore.newest(dir));
  return target === null || needsBaseModel(join(dir, "runs", target));
}

/** Runs (or resumes) a run through a round; returns the run and the round reached. */
export async function runRound(req: RoundRequest): Promise<{ runId: string; round: number }> {
  const config = readWorkspaceConfig(req.workspace);
  const mode = req.mode ?? config.mode;
  // A model folder that loading would refuse (NaN weights, a config.json the weights contradict, a hostile chat
  // template) ends the command here, as `model inspect` would, before a run is created for it.
  if (baseModelToMake(req.workspace, req.runId, req.newRun ?? false)) checkModelInit(config, req.workspace, configPath(req.workspace));
  return asOnlyWriter(req.workspace, () => openOrCreate(req.workspace, req.runId, mode, req.newRun ?? false), req.events, (store) => {
    // A run keeps the mode it was made with (a fork of a DPO-ST run may be ST, whatever config.json says).
    if (req.mode && req.mode !== store.manifest.mode) throw new Error(`run ${store.runId} is a ${store.manifest.mode} run; it cannot go on as ${req.mode} (start a new run with --new-run or --fork)`);
    return continueRun(req, store, config);
  });
}

async function continueRun(req: RoundRequest, store: RunStore, config: SelfTrainConfig): Promise<{ runId: string; round: number }> {
  const interrupted = await store.markInterrupted();
  for (const i of interrupted) {
    const resumes = i.stage === "sample-dpo" || i.stage === "sample-sft";
    req.events.log({ level: "warn", message: `run ${store.runId}: round ${i.round} ${i.stage} was interrupted; ${resumes ? "it goes on from the last finished questions" : "it runs again"}` });
  }
  // By default the warm-up (when it has not run) and then the next round: a round needs a warmed-up model.
  const round = req.round ?? Math.max(1, nextRound(store.manifest));
  if (req.restartFrom) {
    const stages = roundStages(round, store.manifest.mode);
    const from = stages.indexOf(req.restartFrom);
    if (from < 0) throw new Error(`round ${round} of a ${store.manifest.mode} run has no stage "${req.restartFrom}" (stages: ${stages.join(", ")})`);
    for (const later of store.manifest.rounds.filter((r) => r.round > round)) {
      if (Object.values(later.stages).some((st) => st?.state === "done")) throw new Error(`round ${later.round} has finished stages built on round ${round}; re-run the newest round instead`);
    }
    for (const st of stages.slice(from)) {
      await store.setStage(round, st, { state: "pending" });
      // Run again means from the first question: a sampling stage's recorded progress is dropped.
      if (st === "sample-dpo" || st === "sample-sft") rmSync(`${store.path(round, st === "sample-dpo" ? "samples-dpo.jsonl" : "samples-sft.jsonl")}.progress.json`, { force: true });
    }
    req.events.log({ level: "info", message: `run ${store.runId}: round ${round} runs again from ${req.restartFrom}` });
  }
  req.events.log({ level: "info", message: `run ${store.runId} (${store.manifest.mode}): through round ${round}` });
  const reviews = new ReviewLog(selftrainDir(req.workspace));
  // A decision a torn write cut off is not in force: the round goes on without it, but says so.
  for (const lost of reviews.read().lost) req.events.log({ level: "warn", message: lost.message });
  const runner = new SelfTrainRunner({ workspace: req.workspace, config: { ...config, mode: store.manifest.mode }, store, reviews, events: req.events, shouldStop: req.shouldStop });
  await runner.runThrough(round);
  return { runId: store.runId, round };
}



/** Runs a round's evaluation again: the newest round whose model exists, unless one is named. */
export async function evaluateRound(req: { workspace: string; runId?: string; round?: number; events: RunnerEvents; shouldStop: () => boolean }): Promise<{ runId: string; round: number }> {
  const config = readWorkspaceConfig(req.workspace);
  const dir = selftrainDir(req.workspace);
  const runId = req.runId ?? RunStore.newest(dir);
  if (!runId) throw new Error(`${dir}: no runs yet (run a warm-up first)`);
  await RunStore.open(dir, runId); // a missing or unreadable run is said before anything is locked
  return asOnlyWriter(req.workspace, runId, req.events, async (store) => {
    const trained = (n: number): boolean => store.stage(n, n === 0 ? "warmup" : "sft").state === "done";
    const round = req.round ?? Math.max(-1, ...store.manifest.rounds.map((r) => r.round).filter(trained));
    if (round < 0) throw new Error(`run ${runId}: no round has a trained model to evaluate yet (run a warm-up first)`);
    if (!trained(round)) throw new Error(`run ${runId}: round ${round} has no trained model to evaluate`);
    await store.markInterrupted();
    await store.setStage(round, "eval", { state: "pending" });
    const runner = new SelfTrainRunner({ workspace: req.workspace, config: { ...config, mode: store.manifest.mode }, store, reviews: new ReviewLog(dir), events: req.events, shouldStop: req.shouldStop });
    await runner.runThrough(round);
    return { runId, round };
  });
}
