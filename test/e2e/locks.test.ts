import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { ReviewLog } from "../../src/core/store/reviewLog";
import { lockPath, processStart } from "../../src/core/store/runLock";
import { tinyWorkspace } from "../helpers/workspace";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const skip = existsSync(cli) ? false : "dist/ not built (npm run build)";
const selftrain = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

/** A run whose warm-up was running in a process that wrote `lock` and the manifest's stage record. */
async function runningRun(ws: string, owner: { pid: number; host: string; processStart?: string }): Promise<RunStore> {
  const store = await RunStore.create(selftrainDir(ws), { runId: "r1", mode: "dpo-st" });
  await store.setStage(0, "warmup", { state: "running" });
  await store.setStage(0, "warmup", { pid: owner.pid, host: owner.host, processStart: owner.processStart });
  writeFileSync(lockPath(store.dir), JSON.stringify({ ...owner, startedAt: "2026-01-02T03:04:05.000Z" }) + "\n");
  return store;
}

test("a lock from another machine: round refuses naming the lock file, status says the same, unlock needs --force, then status says round resumes", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const store = await runningRun(ws, { pid: 4242, host: "old-container-1" });
  const lock = lockPath(store.dir);
  const release = `selftrain unlock -w ${JSON.stringify(ws)} --run r1 --force`;

  const round = selftrain("round", "-w", ws, "--round", "0");
  assert.equal(round.status, 1, round.stderr);
  assert.ok(round.stderr.includes(`its lock is ${lock}`), round.stderr);
  assert.ok(round.stderr.includes(release), round.stderr);

  const status = selftrain("status", "-w", ws);
  assert.equal(status.status, 0, status.stderr);
  assert.ok(status.stdout.includes(`locked by pid 4242 on host old-container-1 since 2026-01-02T03:04:05.000Z (lock file ${lock})`), status.stdout);
  assert.ok(status.stdout.includes(release), status.stdout);
  assert.match(status.stdout, /\? warmup/);
  assert.doesNotMatch(status.stdout, /was interrupted/, "status must not promise a resume that round refuses");

  const asked = selftrain("unlock", "-w", ws);
  assert.equal(asked.status, 1, asked.stdout);
  assert.match(asked.stderr, /written by pid 4242 on host old-container-1 .*cannot tell whether that process still runs.*--force/);
  assert.ok(existsSync(lock), "without --force another machine's lock stays");

  const forced = selftrain("unlock", "-w", ws, "--run", "r1", "--force");
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /released \(it was pid 4242 on host old-container-1/);
  assert.ok(!existsSync(lock));
  const after = selftrain("status", "-w", ws);
  assert.match(after.stdout, /! warmup/);
  assert.match(after.stdout, /warmup was interrupted \(its process 4242 is gone\); selftrain round resumes it/);
});

test("unlock refuses while the lock's process is alive on this machine, even with --force", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const store = await runningRun(ws, { pid: process.pid, host: hostname(), ...(processStart(process.pid) ? { processStart: processStart(process.pid)! } : {}) });
  const r = selftrain("unlock", "-w", ws, "--force");
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`held by pid ${process.pid} on this machine .*still running; stop it first`));
  assert.ok(existsSync(lockPath(store.dir)));
  const status = selftrain("status", "-w", ws);
  assert.match(status.stdout, /… warmup/);
  assert.ok(status.stdout.includes(`in use by pid ${process.pid}`), status.stdout);
});

test("status: a stage whose pid now belongs to another process (another start time) is interrupted; a torn review decision is named", { skip: skip || (existsSync("/proc/self/stat") ? false : "needs /proc") }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  // This test's own pid is alive, but the recorded start time is not its: the pid was reused by an unrelated
  // process. The lock the killed process left names the same pid and start time, so round takes it over.
  const store = await runningRun(ws, { pid: process.pid, host: hostname(), processStart: "1" });
  const reviews = new ReviewLog(selftrainDir(ws));
  reviews.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  appendFileSync(reviews.path, '{"kind":"exclude-sample","hash":"feedc0ffee1234","id":"x","at":"2026-03-04T05:06:07.000Z"');
  const status = selftrain("status", "-w", ws);
  assert.match(status.stdout, /! warmup/);
  assert.ok(status.stdout.includes(`warmup was interrupted (its process ${process.pid} is gone); selftrain round resumes it`), status.stdout);
  assert.ok(status.stdout.includes(`reviews: ! a review decision was cut off by an interrupted write and is not in force: "exclude-sample" of sample feedc0ffee12`), status.stdout);
  assert.ok(existsSync(lockPath(store.dir)), "status only reads");
});
