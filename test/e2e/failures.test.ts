import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir, configPath } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { tempDir } from "../helpers/paths";

test("a loss that turns NaN/inf fails its stage with a clear message; the last good checkpoint is kept", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  await runRound({ workspace: ws, round: 0, events: recorder(), shouldStop: () => false });
  const store = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  const warm = readFileSync(join(store.checkpointDir(0, "warmup"), "model.safetensors"));
  // An absurd DPO learning rate blows the weights up within a few steps.
  const cfg = JSON.parse(readFileSync(configPath(ws), "utf8"));
  cfg.dpo = { ...cfg.dpo, learningRate: 1e9, steps: 4 };
  writeFileSync(configPath(ws), JSON.stringify(cfg));
  const events = recorder();
  await assert.rejects(runRound({ workspace: ws, round: 1, events, shouldStop: () => false }), /(DPO loss|gradient norm) is (NaN|Infinity|-Infinity)( at step \d+)?/);
  const after = await RunStore.open(selftrainDir(ws), store.runId);
  assert.equal(after.stage(1, "dpo").state, "failed");
  assert.match(after.stage(1, "dpo").error!, /NaN|Infinity/);
  assert.ok(!existsSync(join(after.checkpointDir(1, "dpo"), "config.json")), "a broken DPO checkpoint was written");
  assert.ok(readFileSync(join(after.checkpointDir(0, "warmup"), "model.safetensors")).equals(warm), "the good checkpoint changed");
});

test("a data set with a bad line stops the run with file and line; a bad config names the field", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  appendFileSync(join(ws, "data/train.jsonl"), '{"question": "Q?", "answer": "no final answer"}\n');
  await assert.rejects(runRound({ workspace: ws, events: recorder(), shouldStop: () => false }), /data\/train\.jsonl:45: no final answer after #### \(or A:\)/);
  const cfg = JSON.parse(readFileSync(configPath(ws), "utf8"));
  writeFileSync(configPath(ws), JSON.stringify({ ...cfg, sampling: { ...cfg.sampling, temperature: "warm" } }));
  await assert.rejects(runRound({ workspace: ws, events: recorder(), shouldStop: () => false }), /\.selftrain\/config\.json: sampling\.temperature must be a number, not "warm"/);
});
