import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { WorkerClient, CancelledByUser } from "../../src/worker/client";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { readJsonl } from "../../src/core/store/jsonl";
import type { WorkerEvent } from "../../src/shared/workerProtocol";
import { tinyWorkspace } from "../helpers/workspace";
import { repoRoot, tempDir } from "../helpers/paths";

const workerJs = join(repoRoot, "dist", "worker.js");
const skip = existsSync(workerJs) ? false : "dist/worker.js not built (npm run build)";
const FILES = ["samples-dpo.jsonl", "pairs.jsonl", "samples-sft.jsonl", "pseudo-labels.jsonl", "eval.jsonl", "metrics.jsonl"];

async function runThrough(ws: string, until?: (e: WorkerEvent, engine: WorkerClient) => boolean): Promise<"finished" | "killed" | "cancelled"> {
  const engine = new WorkerClient(workerJs);
  await engine.start();
  const exited = new Promise<void>((resolve) => engine.onExit(() => resolve()));
  let stopped = false;
  try {
    await engine.run({ type: "runRound", id: "job", workspace: ws, round: 1 }, (e) => {
      if (!stopped && until?.(e, engine)) stopped = true;
    });
    return "finished";
  } catch (e) {
    if (e instanceof CancelledByUser) return "cancelled";
    await exited;
    return "killed";
  } finally {
    engine.dispose();
  }
}

/** What a run leaves: per file, its records (metrics without times, which differ between runs). */
async function artefacts(ws: string): Promise<Record<string, unknown[]>> {
  const dir = selftrainDir(ws);
  const store = await RunStore.open(dir, RunStore.list(dir)[0]!);
  const out: Record<string, unknown[]> = {};
  for (const round of [0, 1]) {
    for (const f of FILES) {
      const { records, tornTail } = await readJsonl<Record<string, unknown>>(store.path(round, f));
      assert.equal(tornTail, false, `${f} has a torn line`);
      out[`${round}/${f}`] = f === "metrics.jsonl" ? records.map((r) => `${r["kind"]}:${r["stage"] ?? ""}:${r["step"] ?? ""}`) : records.map((r) => r["hash"] ?? `${r["chosenHash"]}>${r["rejectedHash"]}`);
    }
  }
  return out;
}

test("killed with SIGKILL mid-stage, twice, a rerun finishes with the same artefacts as an uninterrupted run", { skip }, async (t) => {
  const clean = await tinyWorkspace(tempDir(t));
  assert.equal(await runThrough(clean), "finished");
  const crashed = await tinyWorkspace(tempDir(t));
  // Mid-way through sampling (part of samples-dpo.jsonl is written), then mid-way through DPO training.
  assert.equal(await runThrough(crashed, (e, engine) => {
    if (e.type === "progress" && e.stage === "sample-dpo" && e.total !== null && e.done < e.total) {
      engine.kill("SIGKILL");
      return true;
    }
    return false;
  }), "killed");
  assert.equal(await runThrough(crashed, (e, engine) => {
    if (e.type === "metric" && e.record.kind === "train" && e.record.stage === "dpo" && e.record.step === 2) {
      engine.kill("SIGKILL");
      return true;
    }
    return false;
  }), "killed");
  const store = await RunStore.open(selftrainDir(crashed), RunStore.list(selftrainDir(crashed))[0]!);
  assert.equal(store.stage(1, "dpo").state, "running", "the kill left DPO running in the manifest");
  assert.equal(await runThrough(crashed), "finished");
  const [a, b] = [await artefacts(clean), await artefacts(crashed)];
  for (const k of Object.keys(a)) assert.equal(b[k]!.length, a[k]!.length, `${k}: ${b[k]!.length} records after the crashes, ${a[k]!.length} without`);
  // Seeded all the way: the very same records, not only as many.
  assert.deepEqual(b, a);
});

test("a cancel stops a running stage within 2 seconds, leaves it resumable, and the rerun completes", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  let sentAt = 0;
  const engine = new WorkerClient(workerJs);
  await engine.start();
  const events: WorkerEvent[] = [];
  const outcome = await engine.run({ type: "runRound", id: "c1", workspace: ws, round: 1 }, (e) => {
    events.push(e);
    if (sentAt === 0 && e.type === "metric" && e.record.kind === "train" && e.record.stage === "warmup" && e.record.step === 3) {
      sentAt = Date.now();
      engine.send({ type: "cancel", id: "c1" });
    }
  }).then(() => "finished", (e: unknown) => (e instanceof CancelledByUser ? "cancelled" : String(e)));
  const stoppedAfter = Date.now() - sentAt;
  engine.dispose();
  assert.equal(outcome, "cancelled");
  assert.ok(stoppedAfter < 2000, `stopped ${stoppedAfter} ms after the cancel`);
  assert.ok(events.some((e) => e.type === "stage" && e.stage === "warmup" && e.state === "cancelled"));
  const store = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  assert.equal(store.stage(0, "warmup").state, "cancelled");
  assert.equal(await runThrough(ws), "finished");
  const after = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  assert.equal(after.stage(1, "eval").state, "done");
});
