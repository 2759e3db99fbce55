// Sampling goes on from where it stopped (issue 15, item 5): a cancel or a kill -9 in the middle of a sampling stage
// keeps every finished chunk of questions, and the rerun's records are byte for byte an uninterrupted run's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { CancelledError } from "../../src/core/util/cancel";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { repoRoot, tempDir } from "../helpers/paths";
import { readWorkspaceConfig, configPath } from "../../src/core/selftrain/workspace";
import { writeFileSync } from "node:fs";

const cli = join(repoRoot, "dist", "cli.js");

/** The tiny workspace with small sampling batches: 2 questions a chunk, so a stage has many chunks to stop between. */
async function workspace(dir: string): Promise<string> {
  const ws = await tinyWorkspace(dir);
  const c = readWorkspaceConfig(ws);
  writeFileSync(configPath(ws), JSON.stringify({ ...c, sampling: { ...c.sampling, batchSize: 8 } }, null, 2));
  return ws;
}

async function samplesOf(ws: string, file = "samples-dpo.jsonl"): Promise<string> {
  const dir = selftrainDir(ws);
  const store = await RunStore.open(dir, RunStore.list(dir)[0]!);
  return readFileSync(store.path(1, file), "utf8");
}

test("a cancelled sampling stage goes on from its last finished chunk; a cut-off chunk is sampled again; the records equal an uninterrupted run's", async (t) => {
  const reference = await workspace(tempDir(t, "sts-resume-ref-"));
  await runRound({ workspace: reference, round: 1, events: recorder(), shouldStop: () => false });

  const ws = await workspace(tempDir(t, "sts-resume-"));
  let done = 0;
  const first = recorder();
  const events = { ...first, progress: (e: { stage?: string; done: number }) => (e.stage === "sample-dpo" ? (done = e.done) : undefined) };
  // Stop once three chunks (6 questions) are written: inside the fourth chunk's decoding.
  await assert.rejects(runRound({ workspace: ws, round: 1, events: events as typeof first, shouldStop: () => done >= 6 }), CancelledError);
  const dir = selftrainDir(ws);
  const store = await RunStore.open(dir, RunStore.list(dir)[0]!);
  assert.equal(store.stage(1, "sample-dpo").state, "cancelled");
  const partial = readFileSync(store.path(1, "samples-dpo.jsonl"), "utf8").trim().split("\n");
  assert.equal(partial.length, 6 * 4, "three finished chunks of 2 questions × 4 samples are kept");
  // What a flush cut short leaves: a record of the next chunk and half a line. Both go; that chunk is sampled again.
  appendFileSync(store.path(1, "samples-dpo.jsonl"), partial[0] + "\n" + partial[1]!.slice(0, 40));

  const again = recorder();
  await runRound({ workspace: ws, round: 1, events: again, shouldStop: () => false });
  assert.ok(again.logs.some((l) => /round 1 sample-dpo: resuming after 6 of 38 questions \(24 samples kept\)/.test(l)), again.logs.join("\n"));
  assert.equal(await samplesOf(ws), await samplesOf(reference), "samples-dpo.jsonl differs from an uninterrupted run's");
  assert.equal(await samplesOf(ws, "samples-sft.jsonl"), await samplesOf(reference, "samples-sft.jsonl"));
  const a = (await RunStore.open(dir, RunStore.list(dir)[0]!)).stage(1, "sample-dpo").counts!;
  const refDir = selftrainDir(reference);
  const b = (await RunStore.open(refDir, RunStore.list(refDir)[0]!)).stage(1, "sample-dpo").counts!;
  assert.deepEqual([a["samples"], a["correct"], a["tokens"]], [b["samples"], b["correct"], b["tokens"]]);
  assert.ok(!existsSync(store.path(1, "samples-dpo.jsonl.progress.json")), "the progress file is removed when the stage is done");

  // --from sample-dpo means from the first question again.
  const redo = recorder();
  await runRound({ workspace: ws, round: 1, restartFrom: "sample-dpo", events: redo, shouldStop: () => false });
  assert.ok(!redo.logs.some((l) => /resuming/.test(l)));
  assert.equal(await samplesOf(ws), await samplesOf(reference));
});

test("a kill -9 of the CLI and its engine in the middle of sampling: the rerun keeps the finished chunks and writes an uninterrupted run's records", { skip: existsSync(cli) ? false : "dist/cli.js not built", timeout: 300_000 }, async (t) => {
  const reference = await workspace(tempDir(t, "sts-kill-ref-"));
  assert.equal(spawnSync(process.execPath, [cli, "round", "-w", reference], { encoding: "utf8" }).status, 0);

  const ws = await workspace(tempDir(t, "sts-kill-"));
  const child = spawn(process.execPath, [cli, "round", "-w", ws], { detached: true, stdio: "ignore" });
  const progress = () => {
    const dir = selftrainDir(ws);
    const id = existsSync(join(dir, "runs")) ? RunStore.list(dir)[0] : undefined;
    const f = id ? join(dir, "runs", id, "round-1", "samples-dpo.jsonl.progress.json") : "";
    try {
      return id ? (JSON.parse(readFileSync(f, "utf8")) as { chunks: number }).chunks : 0;
    } catch {
      return 0;
    }
  };
  const end = Date.now() + 240_000;
  while (progress() < 4) {
    if (Date.now() > end) throw new Error("sampling did not get under way");
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(-child.pid!, "SIGKILL"); // the CLI and the engine process with it
  await new Promise((r) => child.once("exit", r));
  await new Promise((r) => setTimeout(r, 300)); // SIGKILL reaches the engine process too; let it go
  const kept = progress();
  assert.ok(kept >= 4 && kept < 19, `killed after ${kept} of 19 chunks`);

  const r = spawnSync(process.execPath, [cli, "round", "-w", ws], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /sample-dpo was interrupted; it goes on from the last finished questions/);
  assert.match(r.stdout + r.stderr, new RegExp(`sample-dpo: resuming after ${Math.min(38, kept * 2)} of 38 questions`));
  assert.equal(await samplesOf(ws), await samplesOf(reference), "samples-dpo.jsonl differs from an uninterrupted run's");
  assert.equal(await samplesOf(ws, "pairs.jsonl"), await samplesOf(reference, "pairs.jsonl"));
});

test("a sampling stage continued by another engine starts again from the first question, saying which engines, so its samples come from one", async (t) => {
  const ws = await workspace(tempDir(t, "sts-resume-engine-"));
  const set = (engine: Record<string, unknown>): void => {
    const c = readWorkspaceConfig(ws);
    writeFileSync(configPath(ws), JSON.stringify({ ...c, engine: { ...c.engine, ...engine } }, null, 2));
  };
  set({ name: "onnxruntime" });
  let done = 0;
  const first = recorder();
  const events = { ...first, progress: (e: { stage?: string; done: number }) => (e.stage === "sample-dpo" ? (done = e.done) : undefined) };
  await assert.rejects(runRound({ workspace: ws, round: 1, events: events as typeof first, shouldStop: () => done >= 6 }), CancelledError);

  set({ name: "tfjs" });
  const again = recorder();
  await runRound({ workspace: ws, round: 1, events: again, shouldStop: () => false });
  assert.ok(!again.logs.some((l) => /resuming/.test(l)), again.logs.join("\n"));
  assert.ok(again.logs.some((l) => /samples-dpo\.jsonl: it was sampled by onnxruntime on cpu and this process runs tfjs on wasm \(a stage's samples all come from one engine\); sampling starts again from the first question/.test(l)), again.logs.join("\n"));
  const dir = selftrainDir(ws);
  const store = await RunStore.open(dir, RunStore.list(dir)[0]!);
  assert.equal(store.stage(1, "sample-dpo").counts!["samples"], 38 * 4);
});
