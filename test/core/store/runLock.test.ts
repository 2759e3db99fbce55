import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireRunLock, lockPath, processStart, releaseLock, RunLockedError } from "../../../src/core/store/runLock";
import { RunStore, isInterrupted } from "../../../src/core/store/runStore";
import { tempDir } from "../../helpers/paths";

const linux = existsSync(`/proc/${process.pid}/stat`);

/** A pid that was alive a moment ago and is not any more. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

async function runIn(t: { after: (fn: () => void) => void }): Promise<{ ws: string; store: RunStore }> {
  const ws = tempDir(t);
  return { ws, store: await RunStore.create(join(ws, ".selftrain"), { runId: "r1", mode: "dpo-st" }) };
}

test("a lock written on another machine: the refusal names the lock file and how to release it", async (t) => {
  const { ws, store } = await runIn(t);
  const file = lockPath(store.dir);
  writeFileSync(file, JSON.stringify({ pid: 4242, host: "old-container-1", startedAt: "2026-01-02T03:04:05.000Z" }) + "\n");
  await assert.rejects(acquireRunLock(store.dir, "r1"), (e: unknown) => {
    assert.ok(e instanceof RunLockedError);
    assert.equal(e.lockFile, file);
    assert.match(e.message, /in use by another self-training process \(pid 4242 on old-container-1, since 2026-01-02T03:04:05\.000Z\)/);
    assert.ok(e.message.includes(`its lock is ${file}`), e.message);
    assert.ok(e.message.includes(`selftrain unlock -w ${JSON.stringify(ws)} --run r1 --force`), e.message);
    assert.ok(e.message.includes(`this machine (${hostname()}) cannot tell whether that process still runs`), e.message);
    return true;
  });
  assert.ok(existsSync(file), "the lock stays until it is released on purpose");
});

test("releaseLock: never a live process's lock of this machine, another machine's only with force, a stale one always", async (t) => {
  const { store } = await runIn(t);
  const file = lockPath(store.dir);
  const held = await acquireRunLock(store.dir, "r1");
  for (const force of [false, true]) {
    const r = await releaseLock(file, "r1", { force });
    assert.equal(r.outcome, "refused", r.message);
    assert.match(r.message, new RegExp(`held by pid ${process.pid} on this machine .*still running; stop it first`));
  }
  assert.ok(existsSync(file));
  await held.release();

  writeFileSync(file, JSON.stringify({ pid: 4242, host: "old-container-1", startedAt: "2026-01-02T03:04:05.000Z" }) + "\n");
  const refused = await releaseLock(file, "r1", { force: false });
  assert.equal(refused.outcome, "refused");
  assert.match(refused.message, /written by pid 4242 on host old-container-1 .*--force/);
  assert.ok(existsSync(file));
  const forced = await releaseLock(file, "r1", { force: true });
  assert.equal(forced.outcome, "released", forced.message);
  assert.ok(!existsSync(file));

  writeFileSync(file, JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: "2026-01-02T03:04:05.000Z" }) + "\n");
  const stale = await releaseLock(file, "r1", { force: false });
  assert.equal(stale.outcome, "released", stale.message);
  assert.match(stale.message, /which is gone/);
  assert.equal((await releaseLock(file, "r1", { force: false })).outcome, "free");
});

test("a running stage records its process's host and start time; a reused pid (another start time) is interrupted", { skip: linux ? false : "needs /proc" }, async (t) => {
  const { store } = await runIn(t);
  const running = await store.setStage(0, "warmup", { state: "running" });
  assert.equal(running.pid, process.pid);
  assert.equal(running.host, hostname());
  assert.equal(running.processStart, processStart(process.pid));
  assert.equal(isInterrupted(running), false, "this process runs it");
  // The pid is alive, but it is another process now: its start time is not the one recorded.
  assert.equal(isInterrupted({ ...running, processStart: "1" }), true);
  // Another machine's process cannot be checked from here: not called interrupted on a guess.
  assert.equal(isInterrupted({ ...running, host: "old-container-1", pid: deadPid() }), false);
  const stored = JSON.parse(readFileSync(store.manifestPath, "utf8")) as { rounds: Array<{ stages: Record<string, Record<string, unknown>> }> };
  assert.equal(stored.rounds[0]!.stages["warmup"]!["host"], hostname(), "the manifest on disk records the host");
  const done = await store.setStage(0, "warmup", { state: "done" });
  assert.deepEqual([done.pid, done.host, done.processStart], [undefined, undefined, undefined], "a finished stage names no process");
});

test("a lock that is a folder is named, not a bare EISDIR", async (t) => {
  const { store } = await runIn(t);
  mkdirSync(lockPath(store.dir));
  await assert.rejects(acquireRunLock(store.dir, "r1"), { message: `${lockPath(store.dir)} is a folder, not a file: remove it (or move it elsewhere), then run the command again` });
  const r = await releaseLock(lockPath(store.dir), "r1", { force: false });
  assert.equal(r.outcome, "released", "an empty folder in the lock's place is removed by unlock");
});
