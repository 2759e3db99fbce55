import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatCount, inspectModelFolder, ModelFolderError } from "../core/model/inspectModel";
import { randomUUID } from "node:crypto";
import { WorkerClient, CancelledByUser, WorkerExited } from "../worker/client";
import { estimateWorkspace, formatEstimate } from "../core/selftrain/estimate";
import { initWorkspace, workspaceStatus, workspaceLocks, exportRound, selftrainDir, readWorkspaceConfig } from "../core/selftrain/workspace";
import { forkRun } from "../core/selftrain/forkRun";
import { storedPath } from "../core/selftrain/storedPath";
import { formatRoundResult } from "../shared/roundResult";
import { defaultsNote } from "../core/selftrain/config";
import { roundStages } from "../core/selftrain/stages";
import { RunStore, isInterrupted } from "../core/store/runStore";
import { elsewhereAdvice, lockPath, releaseLock, workspaceLockPath, type LockState } from "../core/store/runLock";
import { ReviewLog, type LostDecision } from "../core/store/reviewLog";
import type { WorkerCommand, WorkerEvent } from "../shared/workerProtocol";
import type { RunManifest, RunMode, StageName, StageRecord } from "../shared/runTypes";
import { parse, intOption, UsageError } from "./args";
import { formatDuration } from "../shared/format";
import { workerExitAdvice } from "../shared/workerExit";

const COMMON = { workspace: { type: "string" as const, short: "w" }, run: { type: "string" as const } };

/** Progress on a terminal: one rewritten line on a TTY, plain lines (at most one per stage tenth) otherwise. */
class ProgressPrinter {
  private readonly tty = Boolean(process.stderr.isTTY);
  private lastTenth = new Map<string, number>();
  private open = false;

  event(e: WorkerEvent): void {
    if (e.type === "progress" && e.total) {
      const key = `${e.round}:${e.stage}:${e.unit ?? ""}`;
      const frac = e.done / e.total;
      const eta = e.etaMs ? ` · ETA ${formatDuration(e.etaMs)}` : "";
      const line = `round ${e.round ?? "?"} · ${e.stage} ${e.done}/${e.total}${e.unit ? ` ${e.unit}` : ""} (${Math.round(frac * 100)}%)${eta}`;
      if (this.tty) {
        const width = 24;
        const bar = "█".repeat(Math.round(frac * width)).padEnd(width, "░");
        process.stderr.write(`\r\x1b[2K${bar} ${line}`);
        this.open = true;
      } else {
        const tenth = Math.floor(frac * 10);
        if ((this.lastTenth.get(key) ?? -1) < tenth) {
          this.lastTenth.set(key, tenth);
          process.stderr.write(line + "\n");
        }
      }
      return;
    }
    this.endLine();
    if (e.type === "stage") {
      const counts = e.counts ? " " + Object.entries(e.counts).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`).join(" ") : "";
      process.stderr.write(`round ${e.round} · ${e.stage}: ${e.state}${e.error ? ` (${e.error})` : ""}${e.state === "done" ? counts : ""}\n`);
    } else if (e.type === "log") {
      process.stderr.write(`${e.level === "info" ? "" : e.level + ": "}${e.message}\n`);
    }
  }

  endLine(): void {
    if (this.open) process.stderr.write("\n");
    this.open = false;
  }
}

/** Runs one command in a fresh worker process; Ctrl-C asks it to cancel, and the run stays resumable. */
export async function viaWorker(command: WorkerCommand & { id: string }): Promise<WorkerEvent[]> {
  const worker = new WorkerClient(join(__dirname, "worker.js"));
  await worker.start();
  const printer = new ProgressPrinter();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    printer.endLine();
    if (interrupts === 1) {
      process.stderr.write("stopping at the next step (Ctrl-C again to kill)…\n");
      worker.send({ type: "cancel", id: command.id });
    } else {
      worker.dispose();
      process.exit(130);
    }
  };
  process.on("SIGINT", onSigint);
  try {
    return await worker.run(command, (e) => printer.event(e));
  } finally {
    printer.endLine();
    process.off("SIGINT", onSigint);
    worker.dispose();
  }
}

function workspaceOf(values: Record<string, unknown>): string {
  return resolve(typeof values["workspace"] === "string" ? values["workspace"] : ".");
}

const INIT_USAGE = `
selftrain init --train FILE.jsonl [--test FILE.jsonl] [--model DIR] [-w WORKSPACE] [--force]

Writes WORKSPACE/.selftrain/config.json with the method's defaults (method.md) for a data set. --model DIR
starts from a local Hugging Face model folder (model.init) instead of a new model; the folder is checked first
(selftrain model inspect DIR shows what it holds), and the training settings are those for a pretrained model
(the paper's Llama settings: DPO lr 3e-7, SFT lr 1e-5; see docs/pretrained-defaults.md), not a new model's.
`;

export async function initCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...COMMON, train: { type: "string" }, test: { type: "string" }, model: { type: "string" }, force: { type: "boolean" } }, INIT_USAGE);
  if (typeof values["train"] !== "string") throw new UsageError("init needs --train FILE.jsonl");
  const ws = workspaceOf(values);
  // Paths on the command line are the shell's, relative to the current folder: a missing one is named now, not
  // when the first round reads it.
  for (const flag of ["train", "test"] as const) {
    const file = values[flag];
    if (typeof file === "string" && !existsSync(resolve(file))) {
      process.stderr.write(`selftrain: --${flag} ${file}: no such file (${resolve(file)}; a relative path is read from the current folder, ${process.cwd()})\n`);
      return 1;
    }
  }
  const overrides: Record<string, unknown> = {};
  if (typeof values["model"] === "string") {
    const dir = resolve(values["model"]);
    try {
      // Every value read too, as loading will: a folder with a NaN weight is refused before a config names it.
      const m = inspectModelFolder(dir, { values: true });
      console.log(`model: ${m.family}, ${formatCount(m.parameters)} parameters, ${Object.keys(m.dtypes).join("/")}, ${m.shards === 1 ? "one file" : `${m.shards} shards`}`);
    } catch (e) {
      if (e instanceof ModelFolderError) {
        process.stderr.write(`selftrain: cannot use this model: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    overrides["model"] = { init: storedPath(ws, dir) };
  }
  const file = await initWorkspace(ws, { train: resolve(values["train"]), test: typeof values["test"] === "string" ? resolve(values["test"]) : "", force: values["force"] === true, overrides });
  console.log(`wrote ${file}`);
  // Which defaults were written, and why: a pretrained model's differ from a new one's by orders of magnitude.
  console.log(`# ${defaultsNote(readWorkspaceConfig(ws))}`);
  const next = await estimateWorkspace(ws);
  console.log(`next: selftrain round -w ${ws}   (${next.what}, ${formatEstimate(next.seconds)}; ${next.basis})`);
  return 0;
}

const ROUND_USAGE = `
selftrain round [-w WORKSPACE] [--run RUN_ID] [--round N] [--new-run] [--mode dpo-st|st] [--from STAGE] [--fork RUN_ID]

Runs (or resumes) one round of self-training: the next unfinished round of the newest run, unless told
otherwise; the warm-up SFT (round 0) first when it has not run. Ctrl-C stops at the next step; running the
command again resumes at the first unfinished stage. --from STAGE runs that stage of the round and the later
ones again (for instance --from pairs after reviewing samples). --fork RUN_ID starts a new run (of --mode)
from that run's finished warm-up, to compare plain and DPO-augmented self-training from one checkpoint.
`;

const WARMUP_USAGE = `
selftrain warmup [-w WORKSPACE] [--run RUN_ID] [--new-run] [--mode dpo-st|st]

Runs (or resumes) the warm-up SFT of a run (round 0: SFT of the base model on the labelled set) and its
evaluation; a new run when there is none or with --new-run. Ctrl-C stops; running it again resumes.
`;

export async function roundCommand(argv: string[], warmupOnly: boolean): Promise<number> {
  const options = warmupOnly
    ? { ...COMMON, "new-run": { type: "boolean" as const }, mode: { type: "string" as const } }
    : { ...COMMON, round: { type: "string" as const }, "new-run": { type: "boolean" as const }, mode: { type: "string" as const }, from: { type: "string" as const }, fork: { type: "string" as const } };
  const { values } = parse(argv, options, warmupOnly ? WARMUP_USAGE : ROUND_USAGE);
  const mode = values["mode"];
  if (mode !== undefined && mode !== "dpo-st" && mode !== "st") throw new UsageError(`--mode must be dpo-st or st, not ${JSON.stringify(mode)}`);
  const round = warmupOnly ? 0 : values["round"] === undefined ? undefined : intOption(values, "round", 0);
  let runId = values["run"] as string | undefined;
  const fork = values["fork"] as string | undefined;
  if (fork !== undefined) {
    if (runId !== undefined) throw new UsageError("--fork makes a new run: it does not go with --run");
    const ws = workspaceOf(values);
    const store = await forkRun(ws, fork, (mode as RunMode | undefined) ?? readWorkspaceConfig(ws).mode);
    console.log(`run ${store.runId} (${store.manifest.mode}) starts from run ${fork}'s warm-up`);
    runId = store.runId;
  }
  try {
    const events = await viaWorker({ type: "runRound", id: randomUUID(), workspace: workspaceOf(values), runId, round, newRun: values["new-run"] === true, mode: mode as "dpo-st" | "st" | undefined, restartFrom: values["from"] as StageName | undefined });
    const done = events.find((e) => e.type === "roundFinished");
    if (done && done.type === "roundFinished") console.log(`run ${done.runId}: round ${done.round} finished${done.result ? `, ${formatRoundResult(done.result)}` : ""}${done.peakRssBytes ? ` (engine peak memory ${(done.peakRssBytes / 2 ** 30).toFixed(2)} GB)` : ""}`);
    return 0;
  } catch (e) {
    if (e instanceof CancelledByUser) {
      console.error("stopped; run the same command again to resume");
      return 130;
    }
    if (e instanceof WorkerExited) {
      // A kill resumes with the same command; a crash of its own says what to fix (the host says the same).
      console.error(`error: ${e.message}: ${workerExitAdvice(e)}`);
      return 1;
    }
    throw e;
  }
}

const EVAL_USAGE = `
selftrain eval [-w WORKSPACE] [--run RUN_ID] [--round N]

Evaluates a round's model again (greedy accuracy on dev and test, pass@k): the newest trained round unless --round.
`;

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...COMMON, round: { type: "string" } }, EVAL_USAGE);
  await viaWorker({ type: "evaluate", id: randomUUID(), workspace: workspaceOf(values), runId: values["run"] as string | undefined, round: values["round"] === undefined ? undefined : intOption(values, "round", 0) });
  return 0;
}

const STATUS_USAGE = `
selftrain status [-w WORKSPACE]

A table of every run's rounds and stages, who holds each run's lock (and how to release one whose process is
gone), and review decisions that an interrupted write cut off.
`;

/** What status knows beyond the manifests; without it, a running stage is judged by its own pid alone. */
export interface StatusContext {
  locks?: { workspace: LockState; runs: Record<string, LockState> };
  lostDecisions?: readonly LostDecision[];
}

/**
 * Whether a stage marked running is interrupted, judged as `round` judges it: by the run's lock. Only the lock's
 * live holder can be running a stage; with no lock, or a stale one, `round` takes the run over and resumes.
 */
function interrupted(record: StageRecord | undefined, lock: LockState | undefined): boolean {
  if (lock === undefined) return isInterrupted(record);
  if (record?.state !== "running" || record.pid === undefined) return false;
  return lock.kind === "free" || lock.kind === "stale" || lock.kind === "folder";
}

/** A line about a run's lock, where it is not simply free or held by the process running it. */
function lockLine(lock: LockState | undefined, runId: string | null): string | null {
  if (lock === undefined) return null;
  if (lock.kind === "elsewhere") return `locked by pid ${lock.owner.pid} on host ${lock.owner.host} since ${lock.owner.startedAt} (lock file ${lock.file}): ${elsewhereAdvice(lock.owner, lock.file, runId)}`;
  if (lock.kind === "folder") return `${lock.file} is a folder, not a file: remove it (selftrain round cannot lock the run while it is there)`;
  if (lock.kind === "held" && runId !== null) return `in use by pid ${lock.owner.pid} since ${lock.owner.startedAt} (lock file ${lock.file})`;
  return null;
}

export function formatStatus(runs: RunManifest[], context: StatusContext = {}): string {
  const lines: string[] = [];
  const ws = lockLine(context.locks?.workspace, null);
  if (ws !== null) lines.push(`workspace: ${ws}`);
  if (runs.length === 0) lines.push("no runs yet");
  const mark: Record<string, string> = { done: "✓", running: "…", failed: "✗", cancelled: "■", pending: "·" };
  for (const m of runs) {
    const lock = context.locks?.runs[m.runId];
    lines.push(`run ${m.runId} (${m.mode}, created ${m.createdAt})`);
    const note = lockLine(lock, m.runId);
    if (note !== null) lines.push(`  ${note}`);
    for (const r of [...m.rounds].sort((a, b) => a.round - b.round)) {
      // "?": marked running by a process on another machine, which this one cannot check (see the lock line).
      const cell = (s: StageName): string => (interrupted(r.stages[s], lock) ? "!" : r.stages[s]?.state === "running" && lock?.kind === "elsewhere" ? "?" : mark[r.stages[s]?.state ?? "pending"]!);
      const cells = roundStages(r.round, m.mode).map((s) => `${cell(s)} ${s}`);
      const ev = r.stages.eval?.counts;
      const acc = ev && ev["testAccuracy"] !== undefined ? `  test ${(100 * ev["testAccuracy"]).toFixed(1)}%` : "";
      const failed = Object.entries(r.stages).find(([, v]) => v?.state === "failed");
      const cut = Object.entries(r.stages).find(([, v]) => interrupted(v, lock));
      lines.push(`  round ${r.round}: ${cells.join("  ")}${acc}${failed ? `\n    ${failed[0]} failed: ${failed[1]?.error ?? ""}` : ""}${cut ? `\n    ${cut[0]} was interrupted (its process ${cut[1]?.pid} is gone); selftrain round resumes it` : ""}`);
    }
  }
  for (const lost of context.lostDecisions ?? []) lines.push(`reviews: ! ${lost.message}`);
  return lines.join("\n");
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, COMMON, STATUS_USAGE);
  const ws = workspaceOf(values);
  console.log(formatStatus(await workspaceStatus(ws), { locks: await workspaceLocks(ws), lostDecisions: new ReviewLog(selftrainDir(ws)).read().lost }));
  return 0;
}

const UNLOCK_USAGE = `
selftrain unlock [-w WORKSPACE] [--run RUN_ID] [--force]

Releases a lock that a process which is gone left behind. A run's lock is .selftrain/runs/RUN_ID/lock (default:
the newest run's); the workspace's, .selftrain/runs.lock, held while a run is chosen or created, is checked too.
A lock whose process still runs on this machine is never released: stop that process (it lets go as it stops).
A lock written on another machine (a recreated container has a new host name) is released only with --force:
this machine cannot tell whether that process still runs, and two writers would corrupt the run. A stale lock
of this machine needs no unlock (round takes it over), but unlock releases it too.
`;

export async function unlockCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...COMMON, force: { type: "boolean" } }, UNLOCK_USAGE);
  const ws = workspaceOf(values);
  const dir = selftrainDir(ws);
  const runId = (values["run"] as string | undefined) ?? RunStore.newest(dir);
  // A run that does not exist is said, not reported as "no lock" (its manifest is not read: it may be the broken part).
  if (runId !== null && !existsSync(join(dir, "runs", runId))) throw new Error(`${join(dir, "runs", runId)}: there is no run "${runId}"`);
  const force = values["force"] === true;
  // The workspace's lock is said only when there is one: it is held for milliseconds and is nearly always free.
  const results = [await releaseLock(workspaceLockPath(dir), null, { force })].filter((r) => r.outcome !== "free");
  if (runId !== null) results.push(await releaseLock(lockPath(join(dir, "runs", runId)), runId, { force }));
  if (results.length === 0) console.log(`${dir}: no runs and no lock`);
  for (const r of results) (r.outcome === "refused" ? console.error : console.log)(r.message);
  return results.some((r) => r.outcome === "refused") ? 1 : 0;
}

const EXPORT_USAGE = `
selftrain export [-w WORKSPACE] [--run RUN_ID] [--round N] [--out DIR] [--no-model]

Writes a round's preference pairs as TRL prompt/chosen/rejected JSONL and its pseudo-labels as prompt/completion
JSONL (default: newest run, its newest round with pairs or pseudo-labels, into ./selftrain-export), and the
model the round ended with as RUN-round-N-model/: a Hugging Face folder in the source model's dtype and weight
files (the run keeps float32 weights between stages), unless --no-model.
`;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...COMMON, round: { type: "string" }, out: { type: "string" }, "no-model": { type: "boolean" } }, EXPORT_USAGE);
  const ws = workspaceOf(values);
  const runId = (values["run"] as string | undefined) ?? RunStore.newest(selftrainDir(ws));
  if (!runId) throw new Error(`${selftrainDir(ws)}: no runs to export`);
  const store = await RunStore.open(selftrainDir(ws), runId);
  const round = values["round"] !== undefined ? intOption(values, "round", 1) : Math.max(0, ...store.manifest.rounds.filter((r) => r.stages["pseudo-labels"]?.state === "done" || r.stages.pairs?.state === "done").map((r) => r.round));
  if (round < 1) throw new Error(`run ${runId}: no round with pairs or pseudo-labels yet`);
  const withModel = values["no-model"] !== true;
  const r = await exportRound(ws, runId, round, resolve(typeof values["out"] === "string" ? values["out"] : "selftrain-export"), { model: withModel });
  console.log(`exported ${r.pairs} pairs and ${r.pseudoLabels} pseudo-labels:\n  ${r.files.join("\n  ")}`);
  if (r.model !== null) console.log(`exported the round's model:\n  ${r.model}`);
  else if (withModel) console.log(`no model: round ${round}'s SFT stage has not finished`);
  return 0;
}
