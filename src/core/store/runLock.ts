import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { link, mkdir, readFile, rename, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { errorCode, folderInsteadOfFile } from "./fsErrors";

export { errorCode } from "./fsErrors";

/**
 * One writer per run. A process that trains, samples or rewrites a run holds `runs/<id>/lock`, a small JSON
 * file naming it. A second process is refused with a message that says who holds the run and which file is the
 * lock; a lock whose owner has died on this machine (kill -9, a crash, a power cut) is stale and is taken over.
 * A lock written on another machine cannot be judged from here: `selftrain unlock --force` releases it.
 *
 * Choosing or creating the run to lock is exclusive too: `.selftrain/runs.lock` is held for those few
 * milliseconds, so two rounds started at once on a workspace without runs make one run, not two.
 */

/** A process as a lock or a running stage records it: pid alone is not enough once the pid is reused. */
export interface ProcessIdentity {
  pid: number;
  /** The machine it runs on; absent in records of older versions (taken as this machine). */
  host?: string;
  /** Its start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it. */
  processStart?: string;
}

export interface LockOwner extends ProcessIdentity {
  host: string;
  startedAt: string;
}

/** alive: runs on this machine; gone: certainly not running; elsewhere: another machine's, which cannot be checked here. */
export type ProcessState = "alive" | "gone" | "elsewhere";

/** Field 22 of /proc/<pid>/stat (start time), or undefined where there is no /proc. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** This process, as a lock or a running stage records it. */
export function thisProcess(): ProcessIdentity & { host: string } {
  const self: ProcessIdentity & { host: string } = { pid: process.pid, host: hostname() };
  const start = processStart(process.pid);
  if (start !== undefined) self.processStart = start;
  return self;
}

/** Whether a process with this pid exists on this machine (EPERM: it does, under another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return errorCode(e) === "EPERM";
  }
  // A killed process stays a zombie until its parent (or init) reaps it; it holds nothing.
  return !isZombie(pid);
}

/** Linux: the state in /proc/<pid>/stat (after the command's closing parenthesis) is Z or X. Elsewhere false. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return false;
  }
}

/**
 * Whether the recorded process still runs. Its pid alone could now be an unrelated process (pids are reused,
 * and a container restarts from pid 1), so where a start time was recorded it must match too.
 */
export function processState(p: ProcessIdentity): ProcessState {
  if (p.host !== undefined && p.host !== hostname()) return "elsewhere";
  if (!isProcessAlive(p.pid)) return "gone";
  const now = processStart(p.pid);
  return p.processStart !== undefined && now !== undefined && now !== p.processStart ? "gone" : "alive";
}

/** The workspace of a `<workspace>/.selftrain/runs/<id>/lock` or `<workspace>/.selftrain/runs.lock`. */
function workspaceOfLock(file: string, isRunLock: boolean): string {
  return isRunLock ? dirname(dirname(dirname(dirname(file)))) : dirname(dirname(file));
}

/** The command that releases a lock, for messages: a run's with --run, the workspace's without. */
export function unlockHint(file: string, runId: string | null, force: boolean): string {
  const ws = workspaceOfLock(file, runId !== null);
  return `selftrain unlock -w ${JSON.stringify(ws)}${runId !== null ? ` --run ${runId}` : ""}${force ? " --force" : ""}`;
}

/** What to do about a lock held on another machine: the same words for round, status and unlock. */
export function elsewhereAdvice(owner: LockOwner, file: string, runId: string | null): string {
  return (
    `this machine (${hostname()}) cannot tell whether that process still runs. If ${owner.host} no longer exists or runs no ` +
    `selftrain (a recreated container gets a new host name), release the lock: ${unlockHint(file, runId, true)}` +
    `${runId !== null ? " (selftrain round then resumes the run)" : ""}. ` +
    `If it still runs there, stop it there first: two writers would corrupt the run`
  );
}

export class RunLockedError extends Error {
  constructor(
    readonly runId: string,
    readonly owner: LockOwner,
    /** The lock file, so the person can see and (once its owner is gone) release it. */
    readonly lockFile: string,
  ) {
    const elsewhere = owner.host !== hostname();
    const where = elsewhere ? `pid ${owner.pid} on ${owner.host}` : `pid ${owner.pid}`;
    super(
      `run ${runId} is in use by another self-training process (${where}, since ${owner.startedAt}); its lock is ${lockFile}; ` +
        (elsewhere ? elsewhereAdvice(owner, lockFile, runId) : "wait for it to finish or stop it (Stop in the window that started it, Ctrl-C in its terminal)"),
    );
    this.name = "RunLockedError";
  }
}

/** The workspace's lock (held while a run is chosen or created) stayed taken for longer than that ever needs. */
export class WorkspaceLockedError extends Error {
  constructor(
    readonly owner: LockOwner,
    readonly lockFile: string,
  ) {
    const elsewhere = owner.host !== hostname();
    super(
      `${lockFile} is held by pid ${owner.pid}${elsewhere ? ` on ${owner.host}` : ""} (since ${owner.startedAt}), which is choosing or creating a run; ` +
        (elsewhere ? elsewhereAdvice(owner, lockFile, null) : `that never takes this long: if pid ${owner.pid} hangs, stop it (its lock is then taken over), and see ${unlockHint(lockFile, null, false)}`),
    );
    this.name = "WorkspaceLockedError";
  }
}

export function parseOwner(text: string): LockOwner | null {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === "number" && typeof v.host === "string" && typeof v.startedAt === "string") return v as LockOwner;
  } catch {
    // unreadable: treated as stale below (locks are written whole through link, so this is a hand-edited file)
  }
  return null;
}

export interface RunLock {
  /** What a stale lock that was taken over said, for a log line. */
  readonly tookOverFrom: LockOwner | null;
  release(): Promise<void>;
}

export function lockPath(runDir: string): string {
  return join(runDir, "lock");
}

/** `.selftrain/runs.lock`: held while a run is chosen or created (see withWorkspaceLock). */
export function workspaceLockPath(selftrainDir: string): string {
  return join(selftrainDir, "runs.lock");
}

/** Reads a lock file; a folder in its place is an error that names it. */
async function readLockText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw folderInsteadOfFile(e, file);
  }
}

/**
 * Takes the lock file or throws what `held` makes of its live owner. The lock is written whole to a private
 * file and linked into place (link fails when the name exists), so two processes can never both succeed and no
 * reader ever sees a half-written lock.
 */
async function acquireLockFile(file: string, held: (owner: LockOwner) => Error): Promise<RunLock> {
  const self: LockOwner = { ...thisProcess(), startedAt: new Date().toISOString() };
  const mine = JSON.stringify(self) + "\n";
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  await writeFile(tmp, mine);
  let tookOverFrom: LockOwner | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, file);
        break;
      } catch (e) {
        if (errorCode(e) !== "EEXIST" || attempt >= 3) throw folderInsteadOfFile(e, file);
      }
      let text: string;
      try {
        text = await readLockText(file);
      } catch (e) {
        if (errorCode(e) === "ENOENT") continue; // released meanwhile
        throw e;
      }
      const owner = parseOwner(text);
      if (owner && processState(owner) !== "gone") throw held(owner);
      // Move the stale lock aside under a unique name, then check that what moved is the lock judged stale:
      // another process may have taken it over in between, and its fresh lock must go back.
      const aside = `${file}.stale-${process.pid}-${randomBytes(6).toString("hex")}`;
      try {
        await rename(file, aside);
      } catch (e) {
        if (errorCode(e) === "ENOENT") continue;
        throw e;
      }
      const moved = await readFile(aside, "utf8");
      if (moved !== text) {
        await link(aside, file).catch(() => undefined);
        await unlink(aside);
        const fresh = parseOwner(moved);
        if (fresh) throw held(fresh);
        continue;
      }
      await unlink(aside);
      tookOverFrom = owner ?? { pid: 0, host: "?", startedAt: "?" };
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  let released = false;
  return {
    tookOverFrom,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      // Only our own lock is removed: a lock that is no longer ours (removed by hand, then retaken) stays.
      const text = await readFile(file, "utf8").catch(() => null);
      if (text === mine) await unlink(file).catch(() => undefined);
    },
  };
}

/** Takes the run's lock or throws RunLockedError (naming the holder and the lock file). */
export async function acquireRunLock(runDir: string, runId: string): Promise<RunLock> {
  const file = lockPath(runDir);
  return acquireLockFile(file, (owner) => new RunLockedError(runId, owner, file));
}

/** How long a second process waits for the workspace lock: held for milliseconds, so this is a hung holder. */
const WORKSPACE_LOCK_WAIT_MS = 15_000;

/**
 * Runs `fn` holding `.selftrain/runs.lock`: choosing the run to work on and creating it when there is none are
 * one step, so two processes started at once cannot both find no run and both make one. A second process
 * waits (the lock is held for milliseconds), then chooses again and finds the first one's run.
 */
export async function withWorkspaceLock<T>(selftrainDir: string, fn: () => Promise<T>): Promise<T> {
  const file = workspaceLockPath(selftrainDir);
  await mkdir(selftrainDir, { recursive: true });
  const deadline = Date.now() + WORKSPACE_LOCK_WAIT_MS;
  let lock: RunLock | null = null;
  while (lock === null) {
    lock = await acquireLockFile(file, (owner) => new WorkspaceLockedError(owner, file)).catch((e: unknown) => {
      if (!(e instanceof WorkspaceLockedError) || Date.now() > deadline) throw e;
      return null;
    });
    if (lock === null) await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** What holds a lock file, as status and unlock describe it. */
export type LockState =
  | { kind: "free"; file: string }
  /** A live process on this machine holds it. */
  | { kind: "held"; file: string; owner: LockOwner }
  /** Its process is gone (or the file is not a lock selftrain wrote): the next writer takes it over. */
  | { kind: "stale"; file: string; owner: LockOwner | null }
  /** Written on another machine: whether its process runs cannot be told from here. */
  | { kind: "elsewhere"; file: string; owner: LockOwner }
  | { kind: "folder"; file: string };

export async function lockState(file: string): Promise<LockState> {
  let text: string;
  try {
    if ((await stat(file)).isDirectory()) return { kind: "folder", file };
    text = await readFile(file, "utf8");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return { kind: "free", file };
    throw e;
  }
  const owner = parseOwner(text);
  if (owner === null) return { kind: "stale", file, owner: null };
  const state = processState(owner);
  return state === "alive" ? { kind: "held", file, owner } : state === "gone" ? { kind: "stale", file, owner } : { kind: "elsewhere", file, owner };
}

export interface UnlockResult {
  /** released: the file is gone; free: there was none; refused: it stays (the message says why and what to do). */
  outcome: "released" | "free" | "refused";
  message: string;
}

/**
 * Releases a lock file the way `selftrain unlock` promises: never while its process is alive on this machine
 * (that would let two processes write one run), one from another machine only with `force` (this machine cannot
 * tell whether that process still runs), a stale or unreadable one always. `runId` null: the workspace's lock.
 */
export async function releaseLock(file: string, runId: string | null, options: { force: boolean }): Promise<UnlockResult> {
  const state = await lockState(file);
  const since = (o: LockOwner): string => `since ${o.startedAt}`;
  switch (state.kind) {
    case "free":
      return { outcome: "free", message: `${file}: no lock` };
    case "folder":
      // Only an empty folder goes: what a person put in a folder is not ours to delete.
      if (await rmdir(file).then(() => true, () => false)) return { outcome: "released", message: `${file}: removed an empty folder that stood where the lock file goes` };
      return { outcome: "refused", message: `${file} is a folder, not a file: remove it (it is not empty, so it is left for you to look at)` };
    case "held":
      return {
        outcome: "refused",
        message:
          `${file}: held by pid ${state.owner.pid} on this machine (${since(state.owner)}), which is still running; stop it first (Stop in the window ` +
          `that started it, Ctrl-C in its terminal, or kill ${state.owner.pid}); it releases the lock as it stops. Removing the lock of a live process ` +
          "would let two processes write one run, so --force does not do that",
      };
    case "elsewhere":
      if (!options.force) return { outcome: "refused", message: `${file}: written by pid ${state.owner.pid} on host ${state.owner.host} (${since(state.owner)}); ${elsewhereAdvice(state.owner, file, runId)}` };
      break;
    case "stale":
      break;
  }
  // Moved aside and compared, as acquire does: a process that took the lock over meanwhile keeps it.
  const text = await readLockText(file).catch((e: unknown) => (errorCode(e) === "ENOENT" ? null : Promise.reject(e)));
  if (text === null) return { outcome: "free", message: `${file}: no lock (released meanwhile)` };
  const aside = `${file}.stale-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    await rename(file, aside);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return { outcome: "free", message: `${file}: no lock (released meanwhile)` };
    throw e;
  }
  const moved = await readFile(aside, "utf8");
  if (moved !== text) {
    await link(aside, file).catch(() => undefined);
    await unlink(aside);
    return { outcome: "refused", message: `${file}: another process took the lock meanwhile; run selftrain unlock again to see who` };
  }
  await unlink(aside);
  const was = state.kind === "elsewhere" ? `pid ${state.owner.pid} on host ${state.owner.host}, ${since(state.owner)}` : state.owner ? `pid ${state.owner.pid} of this machine, which is gone, ${since(state.owner)}` : "not a lock selftrain wrote";
  return { outcome: "released", message: `${file}: released (it was ${was})` };
}
