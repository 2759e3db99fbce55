import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { RoundRecord, RunManifest, RunMode, StageName, StageRecord, StageState } from "../../shared/runTypes";
import { writeJsonAtomic } from "./atomic";
import { isProcessAlive, processState, thisProcess } from "./runLock";
import { errorCode, folderInsteadOfFile } from "./fsErrors";
import { RUN_MODES, STAGE_NAMES, STAGE_STATES, validateManifest } from "./manifestSchema";
import { shown } from "../../shared/messageGuards";

/**
 * Bumped when manifest.json changes shape; a run written by a newer version is refused, not misread. A new
 * optional field that older versions pass over and keep (a stage's `checkpoint` types) is no change of shape.
 */
export const MANIFEST_FORMAT_VERSION = 1;

const FINISHED: readonly StageState[] = ["done", "failed", "cancelled"];

export type CheckpointKind = "warmup" | "dpo" | "sft";

/** A run id becomes a folder name, so it must not be able to climb out of runs/ or upset any file system. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const DATED_RUN_ID = /^(\d{4}-\d{2}-\d{2})-([a-z]+)$/;

function checkRunId(runId: string): void {
  if (!RUN_ID.test(runId)) {
    throw new Error(`invalid run id ${shown(runId)}: use up to 100 letters, digits, ".", "_" and "-"`);
  }
}

/** A temporary file of writeFileAtomic or runLock: `<name>.tmp-<pid>-<hex>` (or `.stale-`). */
const LEFTOVER = /\.(?:tmp|stale)-(\d+)-[0-9a-f]{12}$/;
/** A run being created: a private folder renamed to runs/<id> once its manifest is in it. */
const CREATING = /^\.creating-(\d+)-[0-9a-f]{12}$/;

/** Whether a run folder holds nothing but leftovers of an interrupted creation (no manifest, nothing else). */
function isEmptyRunFolder(dir: string): boolean {
  try {
    return readdirSync(dir).every((name) => LEFTOVER.test(name));
  } catch {
    return false;
  }
}

function checkRound(round: number): void {
  if (!Number.isInteger(round) || round < 0) throw new RangeError(`round must be a non-negative integer, not ${round}`);
}

/** a, b, …, z, aa, ab, … so that a busy day never runs out of ids. */
function letters(index: number): string {
  let s = "";
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(97 + ((n - 1) % 26)) + s;
  return s;
}

/** Local date: the user thinks of "today's runs" in their own time zone. */
function localDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Dated ids sort by date, then z before aa; other ids by code point (not locale, so the order is stable). */
export function compareRunIds(a: string, b: string): number {
  const ma = DATED_RUN_ID.exec(a);
  const mb = DATED_RUN_ID.exec(b);
  if (ma && mb) {
    const [, da = "", sa = ""] = ma;
    const [, db = "", sb = ""] = mb;
    if (da !== db) return da < db ? -1 : 1;
    if (sa.length !== sb.length) return sa.length - sb.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether a stage the manifest calls running is in fact interrupted: the process it names is gone (a kill, a
 * crash), and a rerun resumes it. Gone includes a pid that now belongs to another process (its start time
 * differs from the one recorded). A record without a pid (written by an older version) cannot tell, nor can
 * this machine tell about a process on another one: false for both.
 */
export function isInterrupted(record: StageRecord | undefined): boolean {
  if (record?.state !== "running" || record.pid === undefined) return false;
  return processState({ ...record, pid: record.pid }) === "gone";
}

/** A stage that is not running names no process. */
function dropProcess(record: StageRecord): void {
  delete record.pid;
  delete record.host;
  delete record.processStart;
}

/**
 * One run under `.selftrain/runs/<runId>/`: its manifest (the state of every stage of every round, replaced
 * atomically on each change) and the paths of its artefacts.
 */
export class RunStore {
  // Manifest writes run one after another so the file on disk always ends with the latest state.
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly current: RunManifest,
  ) {}

  /**
   * Starts a new run. Without a runId the id is today's date plus the first free letter suffix. The run is
   * made in a private folder with its manifest and then renamed into place, so runs/ never shows a run folder
   * without a manifest, whenever the process is killed.
   */
  static async create(selftrainDir: string, options: { runId?: string; mode: RunMode; now?: Date }): Promise<RunStore> {
    if (!RUN_MODES.includes(options.mode)) throw new Error(`unknown run mode ${JSON.stringify(options.mode)}`);
    const runs = join(selftrainDir, "runs");
    await mkdir(runs, { recursive: true });
    const now = options.now ?? new Date();
    const given = options.runId;
    if (given !== undefined) checkRunId(given);
    const staging = join(runs, `.creating-${process.pid}-${randomBytes(6).toString("hex")}`);
    await mkdir(staging);
    try {
      const manifest: RunManifest = { formatVersion: MANIFEST_FORMAT_VERSION, runId: "", mode: options.mode, createdAt: now.toISOString(), rounds: [] };
      for (let i = 0; ; i++) {
        const id = given ?? `${localDate(now)}-${letters(i)}`;
        const target = join(runs, id);
        manifest.runId = id;
        await writeJsonAtomic(join(staging, "manifest.json"), manifest);
        try {
          // rename fails when the target exists and is not empty (an empty one, left by an older version's
          // interrupted creation, is replaced), so claiming an id is atomic across processes.
          await rename(staging, target);
          return new RunStore(target, manifest);
        } catch (e) {
          // Taken: EEXIST/ENOTEMPTY, or EPERM where a platform refuses to rename onto an existing folder. An
          // EPERM with nothing there is a real refusal, and would otherwise be retried for ever.
          const code = String(errorCode(e));
          if (!(code === "EEXIST" || code === "ENOTEMPTY" || (code === "EPERM" && existsSync(target)))) throw e;
          if (given !== undefined) throw new Error(`run "${id}" already exists in ${runs}`);
        }
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Removes what killed processes left in runs/: half-created runs, run folders with nothing in them, and
   * temporary files of atomic writes inside `runId`'s folder and in .selftrain/ itself (only those of processes
   * that are gone). Call it while holding the run's lock. Returns the paths it removed.
   */
  static async sweepLeftovers(selftrainDir: string, runId: string): Promise<string[]> {
    const runs = join(selftrainDir, "runs");
    const removed: string[] = [];
    const dead = (pid: string | undefined): boolean => pid !== undefined && Number(pid) !== process.pid && !isProcessAlive(Number(pid));
    for (const name of await readdir(runs).catch(() => [] as string[])) {
      const p = join(runs, name);
      if (dead(CREATING.exec(name)?.[1])) {
        await rm(p, { recursive: true, force: true });
        removed.push(p);
      } else if (RUN_ID.test(name) && name !== runId && isEmptyRunFolder(p)) {
        for (const f of readdirSync(p)) await unlink(join(p, f)).catch(() => undefined);
        // rmdir, not rm: it refuses a folder that a run was renamed into meanwhile.
        if (await rmdir(p).then(() => true, () => false)) removed.push(p);
      }
    }
    // The workspace lock's private file (runs.lock.tmp-…) and config.json's, left by a kill mid-write.
    for (const entry of await readdir(selftrainDir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isFile() && dead(LEFTOVER.exec(entry.name)?.[1])) {
        await unlink(join(selftrainDir, entry.name)).catch(() => undefined);
        removed.push(join(selftrainDir, entry.name));
      }
    }
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = join(dir, entry.name);
        if (entry.isDirectory()) await walk(p);
        else if (dead(LEFTOVER.exec(entry.name)?.[1])) {
          await unlink(p).catch(() => undefined);
          removed.push(p);
        }
      }
    };
    await walk(join(runs, runId));
    return removed;
  }

  /** Opens an existing run; a missing, unreadable or unknown-format manifest is an error naming the file. */
  static async open(selftrainDir: string, runId: string): Promise<RunStore> {
    checkRunId(runId);
    const dir = join(selftrainDir, "runs", runId);
    const file = join(dir, "manifest.json");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if (errorCode(e) === "ENOENT") {
        throw new Error(`${file}: not found; there is no run "${runId}" (or its manifest was removed)`);
      }
      throw folderInsteadOfFile(e, file);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error(`${file}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    return new RunStore(dir, validateManifest(value, file, runId, MANIFEST_FORMAT_VERSION));
  }

  /**
   * Ids of the runs in `.selftrain/runs/`, oldest first. A folder with a broken manifest is listed (open reports
   * it); an empty one, left by an interrupted creation, is not a run.
   */
  static list(selftrainDir: string): string[] {
    try {
      const runs = join(selftrainDir, "runs");
      return readdirSync(runs, { withFileTypes: true })
        .filter((d) => d.isDirectory() && RUN_ID.test(d.name) && !isEmptyRunFolder(join(runs, d.name)))
        .map((d) => d.name)
        .sort(compareRunIds);
    } catch (e) {
      if (errorCode(e) === "ENOENT") return [];
      throw e;
    }
  }

  /** The newest run's id (the one Start Round, Review and Export use by default), or null when there is none. */
  static newest(selftrainDir: string): string | null {
    return RunStore.list(selftrainDir).at(-1) ?? null;
  }

  get runId(): string {
    return this.current.runId;
  }

  get manifestPath(): string {
    return join(this.dir, "manifest.json");
  }

  /** A copy: changes go through setStage so that they reach the disk. */
  get manifest(): RunManifest {
    return structuredClone(this.current);
  }

  roundDir(round: number): string {
    checkRound(round);
    return join(this.dir, `round-${round}`);
  }

  /** A file of a round, e.g. path(1, "pairs.jsonl"). */
  path(round: number, file: string): string {
    return join(this.roundDir(round), file);
  }

  /** Round 0 holds the warm-up checkpoint; rounds 1… a DPO and an SFT checkpoint each. */
  checkpointDir(round: number, kind: CheckpointKind): string {
    checkRound(round);
    if ((round === 0) !== (kind === "warmup")) {
      throw new Error(`round ${round} has no "${kind}" checkpoint: round 0 has "warmup", later rounds "dpo" and "sft"`);
    }
    return kind === "warmup" ? this.path(0, "checkpoint") : join(this.roundDir(round), kind, "checkpoint");
  }

  /** The stage's record; a stage never started is pending. */
  stage(round: number, name: StageName): StageRecord {
    const record = this.current.rounds.find((r) => r.round === round)?.stages[name];
    return record ? structuredClone(record) : { state: "pending" };
  }

  /**
   * Changes a stage and writes manifest.json atomically. Entering "running" stamps startedAt and this process
   * (pid, host and start time, so that a reused pid or another machine's process is not taken for it) and clears
   * the previous attempt's finishedAt and error; entering done/failed/cancelled stamps finishedAt. Fields given
   * in the patch win over these, and a field patched to undefined is removed.
   */
  async setStage(round: number, name: StageName, patch: Partial<StageRecord>): Promise<StageRecord> {
    checkRound(round);
    if (!STAGE_NAMES.includes(name)) throw new Error(`unknown stage ${JSON.stringify(name)}`);
    if (patch.state !== undefined && !STAGE_STATES.includes(patch.state)) {
      throw new Error(`unknown stage state ${JSON.stringify(patch.state)}`);
    }
    const stages = this.roundRecord(round).stages;
    const before = stages[name] ?? { state: "pending" };
    const next: StageRecord = { ...before };
    if (patch.state !== undefined && patch.state !== before.state) {
      const now = new Date().toISOString();
      if (patch.state === "running") {
        next.startedAt = now;
        const self = thisProcess();
        next.pid = self.pid;
        next.host = self.host;
        if (self.processStart !== undefined) next.processStart = self.processStart;
        else delete next.processStart;
        delete next.finishedAt;
        delete next.error;
      } else if (FINISHED.includes(patch.state)) {
        next.finishedAt = now;
        dropProcess(next);
      } else {
        delete next.finishedAt;
        dropProcess(next);
      }
    }
    Object.assign(next, patch);
    for (const key of Object.keys(next) as (keyof StageRecord)[]) if (next[key] === undefined) delete next[key];
    stages[name] = next;
    await this.save();
    return structuredClone(next);
  }

  /** The first of `stages` in `round` that is not done (where a resumed round starts), or null when all are. */
  firstUnfinished(stages: readonly StageName[], round: number): StageName | null {
    return stages.find((s) => this.stage(round, s).state !== "done") ?? null;
  }

  /**
   * After a crash, stages still marked running were not running any more: they become pending with error
   * "interrupted" so a resume restarts them. Returns what it changed. Not part of open: a second window that
   * merely looks at a run must not take it away from the process still working on it.
   */
  async markInterrupted(): Promise<Array<{ round: number; stage: StageName }>> {
    const changed: Array<{ round: number; stage: StageName }> = [];
    for (const r of this.current.rounds) {
      for (const [name, record] of Object.entries(r.stages) as [StageName, StageRecord][]) {
        if (record.state !== "running") continue;
        record.state = "pending";
        record.error = "interrupted";
        delete record.finishedAt;
        dropProcess(record);
        changed.push({ round: r.round, stage: name });
      }
    }
    if (changed.length > 0) await this.save();
    return changed;
  }

  private roundRecord(round: number): RoundRecord {
    let record = this.current.rounds.find((r) => r.round === round);
    if (!record) {
      record = { round, stages: {} };
      this.current.rounds.push(record);
      this.current.rounds.sort((a, b) => a.round - b.round);
    }
    return record;
  }

  private save(): Promise<void> {
    const write = this.writing.catch(() => undefined).then(() => writeJsonAtomic(this.manifestPath, this.current));
    this.writing = write;
    return write;
  }
}
