import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * One writer per run. A process that trains, samples or rewrites a run holds `runs/<id>/lock`, a small JSON
 * file naming it. A second process is refused with a message that says who holds the run; a lock whose owner
 * has died (kill -9, a crash, a power cut) is stale and is taken over.
 */

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  /** The owner's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for the owner. */
  processStart?: string;
}

export class RunLockedError extends Error {
  constructor(
    readonly runId: string,
    readonly owner: LockOwner,
  ) {
    const where = owner.host === hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
    super(
      `run ${runId} is in use by another self-training process (${where}, since ${owner.startedAt}); ` +
        "wait for it to finish or stop it (Stop in the window that started it, Ctrl-C in its terminal)",
    );
    this.name = "RunLockedError";
  }
}

export function errorCode(e: unknown): unknown {
  return typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
}

/** Field 22 of /proc/<pid>/stat (start time), or undefined where there is no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
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

/** Whether the process a lock names is certainly gone. A lock from another machine is never judged stale. */
function isStale(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  if (!isProcessAlive(owner.pid)) return true;
  const now = processStart(owner.pid);
  return owner.processStart !== undefined && now !== undefined && now !== owner.processStart;
}

function parseOwner(text: string): LockOwner | null {
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

/**
 * Takes the run's lock or throws RunLockedError. The lock is written whole to a private file and linked into
 * place (link fails when the name exists), so two processes can never both succeed and no reader ever sees a
 * half-written lock.
 */
export async function acquireRunLock(runDir: string, runId: string): Promise<RunLock> {
  const file = lockPath(runDir);
  const self: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const start = processStart(process.pid);
  if (start !== undefined) self.processStart = start;
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
        if (errorCode(e) !== "EEXIST" || attempt >= 3) throw e;
      }
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        if (errorCode(e) === "ENOENT") continue; // released meanwhile
        throw e;
      }
      const owner = parseOwner(text);
      if (owner && !isStale(owner)) throw new RunLockedError(runId, owner);
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
        if (fresh) throw new RunLockedError(runId, fresh);
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
