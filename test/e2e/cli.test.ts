import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { forkRun } from "../../src/core/selftrain/forkRun";
import { readJsonl } from "../../src/core/store/jsonl";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

test("CLI: --help everywhere, a one-line reason and a non-zero exit on errors", { skip: existsSync(cli) ? false : "dist/cli.js not built" }, (t) => {
  for (const cmd of ["init", "warmup", "round", "eval", "status", "export", "demo", "generate", "check", "tokenizer", "model"]) {
    const r = run(cmd, "--help");
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, new RegExp(`^selftrain ${cmd}`), cmd);
  }
  const empty = tempDir(t);
  let r = run("round", "-w", empty);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /config\.json: no self-training set-up here/);
  r = run("status", "-w", empty);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /no runs yet/);
  r = run("round", "--mode", "fast");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--mode must be dpo-st or st/);
  r = run("round", "-w", empty, "--from", "nonsense");
  assert.notEqual(r.status, 0);
  r = run("init", "-w", empty);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /init needs --train/);
});

test("plain self-training (st) forked from a DPO-ST run's warm-up: the same round-0 model, no DPO step, pseudo-labels from the SFT model itself", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const warm = await runRound({ workspace: ws, round: 0, events: recorder(), shouldStop: () => false });
  const source = await RunStore.open(selftrainDir(ws), warm.runId);
  const fork = await forkRun(ws, warm.runId, "st");
  assert.notEqual(fork.runId, warm.runId);
  const weights = (s: RunStore): Buffer => readFileSync(join(s.checkpointDir(0, "warmup"), "model.safetensors"));
  assert.ok(weights(fork).equals(weights(source)), "the fork starts from the same warm-up weights");
  await assert.rejects(forkRun(ws, fork.runId.replace(/.$/, "z"), "st"), /no run/);
  // The workspace's config says dpo-st; the run's own mode (st) is what counts, with or without --mode.
  await assert.rejects(runRound({ workspace: ws, runId: fork.runId, round: 1, mode: "dpo-st", events: recorder(), shouldStop: () => false }), /is a st run; it cannot go on as dpo-st/);
  const { runId } = await runRound({ workspace: ws, runId: fork.runId, round: 1, events: recorder(), shouldStop: () => false });
  assert.equal(runId, fork.runId);
  const store = await RunStore.open(selftrainDir(ws), runId);
  assert.equal(store.stage(0, "warmup").state, "done");
  assert.deepEqual((await RunStore.open(selftrainDir(ws), warm.runId)).manifest.rounds.map((r) => r.round), [0], "the source run is unchanged");
  assert.equal(store.manifest.mode, "st");
  assert.deepEqual(Object.keys(store.manifest.rounds.find((r) => r.round === 1)!.stages).sort(), ["eval", "pseudo-labels", "sample-sft", "sft"]);
  assert.ok(!existsSync(store.path(1, "pairs.jsonl")) && !existsSync(store.path(1, "samples-dpo.jsonl")));
  assert.ok(existsSync(join(store.checkpointDir(1, "sft"), "model.safetensors")));
});

test("sft.from \"previous\": a round's SFT goes on from the round's SFT model instead of restarting from the base model", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const file = join(ws, ".selftrain", "config.json");
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), mode: "st", sft: { ...JSON.parse(readFileSync(file, "utf8")).sft, from: "previous" } }, null, 2));
  const { runId } = await runRound({ workspace: ws, round: 1, events: recorder(), shouldStop: () => false });
  const store = await RunStore.open(selftrainDir(ws), runId);
  const losses = async (round: number, stage: string): Promise<number[]> =>
    (await readJsonl<{ kind: string; stage: string; loss: number }>(store.path(round, "metrics.jsonl"))).records.filter((m) => m.kind === "train" && m.stage === stage).map((m) => m.loss);
  const warm = await losses(0, "warmup");
  const sft = await losses(1, "sft");
  // Restarted from the base model, the first SFT loss would be the base model's (the warm-up's first); going on,
  // it starts near where the warm-up ended.
  assert.ok(warm[0]! - warm.at(-1)! > 1, `the warm-up learnt: ${warm[0]} → ${warm.at(-1)}`);
  assert.ok(sft[0]! < warm[0]! - 1, `round 1 SFT starts at ${sft[0]}, the warm-up started at ${warm[0]} and ended at ${warm.at(-1)}`);
});
