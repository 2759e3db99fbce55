import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { WorkerClient } from "../../src/worker/client";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { readJsonl } from "../../src/core/store/jsonl";
import { lockPath } from "../../src/core/store/runLock";
import { runningWarmupPid, tinyWorkspace } from "../helpers/workspace";
import { repoRoot, tempDir } from "../helpers/paths";

const workerJs = join(repoRoot, "dist", "worker.js");
const cli = join(repoRoot, "dist", "cli.js");
const skip = existsSync(workerJs) && existsSync(cli) ? false : "dist/ not built (npm run build)";
const selftrain = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

async function onlyRun(ws: string): Promise<RunStore> {
  return RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
}

/** A pid that was alive a moment ago and is not any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("two rounds on one run: the second is refused with the holder's pid, the first trains alone", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const first = new WorkerClient(workerJs);
  await first.start();
  t.after(() => first.dispose());
  let second: ReturnType<typeof selftrain> | null = null;
  let heldBy: unknown;
  await first.run({ type: "runRound", id: "first", workspace: ws, round: 0 }, (e) => {
    // While the warm-up trains, a second process (the CLI) asks for the same run. The first is held (SIGSTOP)
    // until the second has answered, so the second meets it mid-round however fast either process is; a
    // stopped process is alive and keeps its lock, as a busy one does.
    if (second !== null || e.type !== "metric" || e.record.kind !== "train" || e.record.stage !== "warmup" || e.record.step !== 2) return;
    first.kill("SIGSTOP");
    try {
      const lock = lockPath(RunStore.list(selftrainDir(ws)).map((id) => join(selftrainDir(ws), "runs", id))[0]!);
      heldBy = (JSON.parse(readFileSync(lock, "utf8")) as { pid?: unknown }).pid;
      second = selftrain("round", "-w", ws, "--round", "0");
    } finally {
      first.kill("SIGCONT");
    }
  });
  assert.equal(heldBy, first.pid, "the first process held the run's lock while the second asked");
  assert.ok(second !== null, "the second process was started");
  const refused = second as ReturnType<typeof selftrain>;
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /run \S+ is in use by another self-training process \(pid \d+, since /);
  const store = await onlyRun(ws);
  assert.equal(store.stage(0, "warmup").state, "done");
  assert.equal(store.stage(0, "warmup").error, undefined, "the live warm-up was marked interrupted");
  const steps = (await readJsonl<Record<string, unknown>>(store.path(0, "metrics.jsonl"))).records.filter((r) => r["stage"] === "warmup");
  assert.deepEqual(steps.map((r) => r["step"]), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.ok(!existsSync(lockPath(store.dir)), "the lock is released when the round ends");
});

test("an engine killed mid-stage: the CLI says a rerun resumes, status says interrupted, leftovers are cleared, the rerun takes the stale lock", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const child = spawn(process.execPath, [cli, "round", "-w", ws, "--round", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // The engine's pid is in the manifest while its stage runs: kill the engine alone, as a crash would.
  const enginePid = await runningWarmupPid(ws);
  assert.ok(enginePid !== undefined, "the warm-up started");
  process.kill(enginePid, "SIGKILL");
  assert.equal(await exited, 1);
  assert.match(stderr, /worker process stopped \(code null, signal SIGKILL\).*run the same command again to resume/);

  const store = await onlyRun(ws);
  assert.ok(existsSync(lockPath(store.dir)), "the killed engine's lock is still there");
  const status = selftrain("status", "-w", ws);
  assert.match(status.stdout, /! warmup/);
  assert.match(status.stdout, /warmup was interrupted \(its process \d+ is gone\); selftrain round resumes it/);

  // What kills leave behind: temporary files of atomic writes by processes that are gone.
  const dead = deadPid();
  mkdirSync(store.path(0, "checkpoint"), { recursive: true });
  const leftovers = [join(store.path(0, "checkpoint"), `model.onnx.tmp-${dead}-0123456789ab`), join(store.dir, `manifest.json.tmp-${dead}-0123456789ab`)];
  for (const f of leftovers) writeFileSync(f, "half");
  const rerun = selftrain("round", "-w", ws, "--round", "0");
  assert.equal(rerun.status, 0, rerun.stderr);
  assert.match(rerun.stderr, /is gone; taking over/);
  assert.match(rerun.stderr, /removed 2 leftover file\(s\)/);
  for (const f of leftovers) assert.ok(!existsSync(f), `${f} is still there`);
  const after = await onlyRun(ws);
  assert.equal(after.stage(0, "eval").state, "done");
  assert.ok(!existsSync(lockPath(after.dir)));
  assert.equal(readFileSync(join(after.dir, "manifest.json"), "utf8").includes('"pid"'), false, "a finished run keeps no pid");
});
