import { existsSync, readFileSync, mkdirSync } from "node:fs";
import { join, relative, isAbsolute } from "node:path";
import { parseConfig, defaultConfig, type SelfTrainConfig } from "./config";
import { SelfTrainRunner, roundStages } from "./runner";
import { RunStore } from "../store/runStore";
import { ReviewLog } from "../store/reviewLog";
import { writeJsonAtomic } from "../store/atomic";
import { readJsonl, JsonlWriter } from "../store/jsonl";
import { formatPrompt } from "../model/promptFormat";
import type { RunnerEvents } from "./runEvents";
import type { RunManifest, RunMode, PairRecord, PseudoLabelRecord, StageName } from "../../shared/runTypes";

export function selftrainDir(workspace: string): string {
  return join(workspace, ".selftrain");
}

export function configPath(workspace: string): string {
  return join(selftrainDir(workspace), "config.json");
}

/** Writes .selftrain/config.json with the defaults and the data set paths (relative to the workspace). */
export async function initWorkspace(workspace: string, options: { train: string; test?: string; overrides?: Record<string, unknown>; force?: boolean }): Promise<string> {
  const file = configPath(workspace);
  if (existsSync(file) && !options.force) throw new Error(`${file} already exists (use --force to overwrite)`);
  const rel = (p: string): string => (isAbsolute(p) ? relative(workspace, p) || p : p);
  const base = defaultConfig();
  const config = parseConfig({ ...options.overrides, data: { ...(options.overrides?.["data"] as object | undefined), train: rel(options.train), test: options.test === undefined ? base.data.test : rel(options.test) } }, file);
  mkdirSync(selftrainDir(workspace), { recursive: true });
  await writeJsonAtomic(file, config);
  return file;
}

export function readWorkspaceConfig(workspace: string): SelfTrainConfig {
  const file = configPath(workspace);
  if (!existsSync(file)) throw new Error(`${file}: no self-training set-up here (run "selftrain init" or the Initialize Workspace command)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseConfig(raw, file);
}

/** The run to continue: the given one, else the newest, else a new one. */
async function openOrCreate(workspace: string, runId: string | undefined, mode: RunMode, createNew: boolean): Promise<RunStore> {
  const dir = selftrainDir(workspace);
  if (runId) return existsSync(join(dir, "runs", runId)) ? RunStore.open(dir, runId) : RunStore.create(dir, { runId, mode });
  const runs = RunStore.list(dir);
  if (runs.length === 0 || createNew) return RunStore.create(dir, { mode });
  return RunStore.open(dir, runs[runs.length - 1]!);
}

/** The first round with an unfinished stage, or the round after the last one. */
export function nextRound(m: RunManifest): number {
  for (let n = 0; ; n++) {
    const rec = m.rounds.find((r) => r.round === n);
    if (!rec || roundStages(n, m.mode).some((s) => rec.stages[s]?.state !== "done")) return n;
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

/** Runs (or resumes) a run through a round; returns the run and the round reached. */
export async function runRound(req: RoundRequest): Promise<{ runId: string; round: number }> {
  const config = readWorkspaceConfig(req.workspace);
  const mode = req.mode ?? config.mode;
  const store = await openOrCreate(req.workspace, req.runId, mode, req.newRun ?? false);
  const interrupted = await store.markInterrupted();
  for (const i of interrupted) req.events.log({ level: "warn", message: `run ${store.runId}: round ${i.round} ${i.stage} was interrupted; it restarts` });
  const round = req.round ?? nextRound(store.manifest);
  if (req.restartFrom) {
    const stages = roundStages(round, store.manifest.mode);
    const from = stages.indexOf(req.restartFrom);
    if (from < 0) throw new Error(`round ${round} of a ${store.manifest.mode} run has no stage "${req.restartFrom}" (stages: ${stages.join(", ")})`);
    for (const later of store.manifest.rounds.filter((r) => r.round > round)) {
      if (Object.values(later.stages).some((st) => st?.state === "done")) throw new Error(`round ${later.round} has finished stages built on round ${round}; re-run the newest round instead`);
    }
    for (const st of stages.slice(from)) await store.setStage(round, st, { state: "pending" });
    req.events.log({ level: "info", message: `run ${store.runId}: round ${round} runs again from ${req.restartFrom}` });
  }
  req.events.log({ level: "info", message: `run ${store.runId} (${store.manifest.mode}): through round ${round}` });
  const runner = new SelfTrainRunner({ workspace: req.workspace, config: { ...config, mode }, store, reviews: new ReviewLog(selftrainDir(req.workspace)), events: req.events, shouldStop: req.shouldStop });
  await runner.runThrough(round);
  return { runId: store.runId, round };
}

export async function workspaceStatus(workspace: string): Promise<RunManifest[]> {
  const dir = selftrainDir(workspace);
  const out: RunManifest[] = [];
  for (const id of RunStore.list(dir)) out.push((await RunStore.open(dir, id)).manifest);
  return out;
}

/**
 * Exports a round's preference pairs as TRL's `prompt / chosen / rejected` JSONL and its pseudo-labels as
 * `prompt / completion`, for training elsewhere.
 */
export async function exportRound(workspace: string, runId: string, round: number, outDir: string): Promise<{ pairs: number; pseudoLabels: number; files: string[] }> {
  const store = await RunStore.open(selftrainDir(workspace), runId);
  mkdirSync(outDir, { recursive: true });
  const pairs = (await readJsonl<PairRecord>(store.path(round, "pairs.jsonl"))).records;
  const labels = (await readJsonl<PseudoLabelRecord>(store.path(round, "pseudo-labels.jsonl"))).records;
  const files = [join(outDir, `${runId}-round-${round}-pairs.jsonl`), join(outDir, `${runId}-round-${round}-pseudo-labels.jsonl`)];
  const pw = await JsonlWriter.open<Record<string, string>>(files[0]!, { truncate: true });
  for (const p of pairs) pw.append({ prompt: formatPrompt(p.question), chosen: p.chosen, rejected: p.rejected, source: p.source });
  await pw.close();
  const lw = await JsonlWriter.open<Record<string, string>>(files[1]!, { truncate: true });
  for (const l of labels) lw.append({ prompt: formatPrompt(l.question), completion: l.rationale, source: l.source });
  await lw.close();
  return { pairs: pairs.length, pseudoLabels: labels.length, files };
}

/** Runs a round's evaluation again: the newest round whose model exists, unless one is named. */
export async function evaluateRound(req: { workspace: string; runId?: string; round?: number; events: RunnerEvents; shouldStop: () => boolean }): Promise<{ runId: string; round: number }> {
  const config = readWorkspaceConfig(req.workspace);
  const dir = selftrainDir(req.workspace);
  const runs = RunStore.list(dir);
  const runId = req.runId ?? runs[runs.length - 1];
  if (!runId) throw new Error(`${dir}: no runs yet (run a warm-up first)`);
  const store = await RunStore.open(dir, runId);
  const trained = (n: number): boolean => store.stage(n, n === 0 ? "warmup" : "sft").state === "done";
  const round = req.round ?? Math.max(-1, ...store.manifest.rounds.map((r) => r.round).filter(trained));
  if (round < 0 || !trained(round)) throw new Error(`run ${runId}: round ${round < 0 ? 0 : round} has no trained model to evaluate`);
  await store.setStage(round, "eval", { state: "pending" });
  const runner = new SelfTrainRunner({ workspace: req.workspace, config: { ...config, mode: store.manifest.mode }, store, reviews: new ReviewLog(dir), events: req.events, shouldStop: req.shouldStop });
  await runner.runThrough(round);
  return { runId, round };
}
