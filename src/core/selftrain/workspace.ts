import { existsSync, readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseConfig, defaultConfig } from "./config";
import type { SelfTrainConfig } from "./configTypes";
import { storedPath } from "./storedPath";
import { roundStages } from "./stages";
import { RunStore } from "../store/runStore";
import { writeJsonAtomic } from "../store/atomic";
import { folderInsteadOfFile } from "../store/fsErrors";
import { lockPath, lockState, workspaceLockPath, type LockState } from "../store/runLock";
import { readJsonl, JsonlWriter } from "../store/jsonl";
import { formatPrompt, promptFormatFor } from "../model/promptFormat";
import { loadTokenizer } from "../tokenizer/tokenizer";
import { loadCheckpoint, saveCheckpoint, sourceDtype } from "../model/checkpoint";
import { weightFilesOf } from "../model/modelFolder";
import type { RunManifest, PairRecord, PseudoLabelRecord } from "../../shared/runTypes";

/*
 * A workspace's self-training set-up: its config, its runs, their status and exports. Nothing here trains,
 * so the extension host imports this module without loading any compute code.
 */

export function selftrainDir(workspace: string): string {
  return join(workspace, ".selftrain");
}

export function configPath(workspace: string): string {
  return join(selftrainDir(workspace), "config.json");
}

/**
 * Writes .selftrain/config.json with the defaults and the data set paths (relative inside the workspace, absolute
 * outside it: storedPath): the defaults for its model.init, so a model folder starts from a pretrained model's
 * settings (parseConfig).
 */
export async function initWorkspace(workspace: string, options: { train: string; test?: string; overrides?: Record<string, unknown>; force?: boolean }): Promise<string> {
  const file = configPath(workspace);
  if (existsSync(file) && !options.force) throw new Error(`${file} already exists (use --force to overwrite)`);
  const rel = (p: string): string => (p === "" ? p : storedPath(workspace, p));
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
    const folder = folderInsteadOfFile(e, file);
    if (folder !== e) throw folder;
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseConfig(raw, file);
}

/** The first round with an unfinished stage, or the round after the last one. */
export function nextRound(m: RunManifest): number {
  for (let n = 0; ; n++) {
    const rec = m.rounds.find((r) => r.round === n);
    if (!rec || roundStages(n, m.mode).some((s) => rec.stages[s]?.state !== "done")) return n;
  }
}

/**
 * What "Run Warm-up SFT" does with the newest run: none, or one whose warm-up was never started → a new run;
 * one whose warm-up is unfinished → resume it; one whose warm-up is done → a new run, but only once the person
 * agrees (`rounds` says how far the current run has got).
 */
export function warmupPlan(newest: RunManifest | null): { action: "new" } | { action: "resume"; runId: string } | { action: "ask"; runId: string; rounds: number } {
  if (newest === null) return { action: "new" };
  const warmup = newest.rounds.find((r) => r.round === 0)?.stages.warmup?.state;
  if (warmup !== "done") return { action: "resume", runId: newest.runId };
  const finished = newest.rounds.filter((r) => r.round > 0 && roundStages(r.round, newest.mode).every((s) => r.stages[s]?.state === "done")).length;
  return { action: "ask", runId: newest.runId, rounds: finished };
}

/**
 * The locks that decide whether a round may start: the workspace's (held while a run is chosen or created) and
 * each run's. Status reads a running stage through its run's lock, as `round` does, so the two say the same.
 */
export async function workspaceLocks(workspace: string): Promise<{ workspace: LockState; runs: Record<string, LockState> }> {
  const dir = selftrainDir(workspace);
  const runs: Record<string, LockState> = {};
  for (const id of RunStore.list(dir)) runs[id] = await lockState(lockPath(join(dir, "runs", id)));
  return { workspace: await lockState(workspaceLockPath(dir)), runs };
}

export async function workspaceStatus(workspace: string): Promise<RunManifest[]> {
  const dir = selftrainDir(workspace);
  const out: RunManifest[] = [];
  for (const id of RunStore.list(dir)) out.push((await RunStore.open(dir, id)).manifest);
  return out;
}

/**
 * Exports a round's preference pairs as TRL's `prompt / chosen / rejected` JSONL and its pseudo-labels as
 * `prompt / completion`, for training elsewhere; with `model`, also the model the round ended with (exportModel),
 * when it has one. `model` is null when none was written.
 */
export async function exportRound(workspace: string, runId: string, round: number, outDir: string, options: { model?: boolean } = {}): Promise<{ pairs: number; pseudoLabels: number; files: string[]; model: string | null }> {
  const store = await RunStore.open(selftrainDir(workspace), runId);
  mkdirSync(outDir, { recursive: true });
  const pairs = (await readJsonl<PairRecord>(store.path(round, "pairs.jsonl"))).records;
  // The prompt as the run's model read it: its chat template when the run used one, else the plain format.
  const base = join(store.dir, "base");
  const config = readWorkspaceConfig(workspace);
  const format = existsSync(join(base, "tokenizer.json")) ? promptFormatFor(loadTokenizer(base), config.model.promptFormat, base) : null;
  const prompt = (q: string): string => (format ? format.promptText(q) : formatPrompt(q));
  const labels = (await readJsonl<PseudoLabelRecord>(store.path(round, "pseudo-labels.jsonl"))).records;
  const files = [join(outDir, `${runId}-round-${round}-pairs.jsonl`), join(outDir, `${runId}-round-${round}-pseudo-labels.jsonl`)];
  const pw = await JsonlWriter.open<Record<string, string>>(files[0]!, { truncate: true });
  for (const p of pairs) pw.append({ prompt: prompt(p.question), chosen: p.chosen, rejected: p.rejected, source: p.source });
  await pw.close();
  const lw = await JsonlWriter.open<Record<string, string>>(files[1]!, { truncate: true });
  for (const l of labels) lw.append({ prompt: prompt(l.question), completion: l.rationale, source: l.source });
  await lw.close();
  const model = options.model && roundModel(store, round) !== null ? exportModel(store, round, join(outDir, `${runId}-round-${round}-model`)) : null;
  return { pairs: pairs.length, pseudoLabels: labels.length, files, model };
}

/** The checkpoint a round ends with: its SFT model (round 0: the warm-up's), or null until that stage is done. */
export function roundModel(store: RunStore, round: number): string | null {
  const stage = round === 0 ? "warmup" : "sft";
  return store.stage(round, stage).state === "done" ? store.checkpointDir(round, stage) : null;
}

/**
 * Writes the model a round ended with into `outDir` as the source model came: in its dtype (the run keeps
 * float32 working weights between stages; here they are rounded, to nearest even, once), in the weight files of
 * the run's base (the source's layout), with the source's config.json (torch_dtype the source's again), so it
 * loads in transformers and vLLM as the original does. A model the run created leaves as float32, one file.
 */
export function exportModel(store: RunStore, round: number, outDir: string): string {
  const dir = roundModel(store, round);
  if (dir === null) throw new Error(`run ${store.runId}: round ${round} has no trained model yet (its ${round === 0 ? "warm-up" : "SFT"} stage has not finished)`);
  const ckpt = loadCheckpoint(dir);
  const base = join(store.dir, "base");
  const layout = existsSync(join(base, "config.json")) ? weightFilesOf(base) : undefined;
  saveCheckpoint(outDir, ckpt, { run: store.runId, round: String(round), stage: round === 0 ? "warmup" : "sft" }, { dtype: sourceDtype(ckpt.source), ...(layout ? { layout } : {}) });
  return outDir;
}
