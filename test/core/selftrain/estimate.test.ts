import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../../src/core/selftrain/config";
import { dataStats, estimateSeconds, formatEstimate, ratesForSize, ratesFromRun, roundWork, estimateNextRound, longJobQuestion } from "../../../src/core/selftrain/estimate";
import type { RunManifest } from "../../../src/shared/runTypes";
import { tempDir } from "../../helpers/paths";
import { editJson, tinyModelFolder } from "../../helpers/modelFolders";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { loadTokenizer } from "../../../src/core/tokenizer/tokenizer";

const config = parseConfig({
  data: { train: "train.jsonl", test: "", devSize: 10, testSize: 20, maxTrainQuestions: 0 },
  warmup: { epochs: 0, steps: 100, batchSize: 8, microBatchSize: 8 },
  sampling: { dpoSamples: 4, sftSamples: 3, maxNewTokens: 1000 },
  pairs: { maxPerQuestion: 3 },
  dpo: { steps: 10, batchSize: 4, microBatchSize: 4 },
  sft: { epochs: 2, steps: 0, batchSize: 10, microBatchSize: 10 },
  eval: { passSamples: 4, passK: 4, maxQuestions: 0 },
});

test("the next round's work, counted by hand from the settings and the data", (t) => {
  const ws = tempDir(t);
  // 100 lines of 84 + 42 = 126 characters: 30 tokens each at 4.2 characters a token, 10 of them the rationale.
  const line = JSON.stringify({ question: "q".repeat(84), answer: "a".repeat(42) });
  writeFileSync(join(ws, "train.jsonl"), Array(100).fill(line).join("\n") + "\n");
  const d = dataStats(config, ws);
  // dev: min(10, 100/4) = 10; test from train: 20; train: 70; evaluated: 30.
  assert.deepEqual([d.trainQuestions, d.evalQuestions, Math.round(d.exampleTokens * 1e6) / 1e6, Math.round(d.completionTokens * 1e6) / 1e6], [70, 30, 30, 10]);
  const w = roundWork(config, d, { warmup: true, round: true });
  // A sample is about a rationale's length (10 tokens, under maxNewTokens 1000): what a run counts as sampled.
  const evalTokens = 30 * (1 + 4) * 10;
  const pairs = 0.8 * 70 * 3;
  assert.equal(w.trainTokens, 100 * 8 * 30 + 10 * 4 * 2 * 30 + 2 * Math.ceil((70 * 1.3) / 10) * 10 * 30);
  // The reference log-probs only of the pairs 10 DPO steps of 4 draw: 40 of the 168.
  assert.ok(pairs > 40);
  assert.equal(w.scoreTokens, 40 * 2 * 30);
  assert.equal(w.sampleTokens, 2 * evalTokens + 70 * 4 * 10 + 70 * 3 * 10);
  // Building pairs and selecting pseudo-labels load no model: no overhead.
  assert.equal(w.stages, 2 + 5);
  const r = { trainTokensPerSecond: 1000, sampleTokensPerSecond: 500, basis: "" };
  assert.equal(estimateSeconds(w, r), w.trainTokens / 1000 + w.scoreTokens / 3000 + w.sampleTokens / 500 + 7 * 3);
  // Plain self-training: no DPO sampling, pairs or DPO.
  const st = roundWork({ ...config, mode: "st" }, d, { warmup: false, round: true });
  assert.deepEqual([st.scoreTokens, st.sampleTokens], [0, evalTokens + 70 * 3 * 10]);
  // At most maxNewTokens a sample.
  assert.equal(roundWork({ ...config, sampling: { ...config.sampling, maxNewTokens: 4 } }, d, { warmup: false, round: true }).sampleTokens, 30 * 5 * 4 + 70 * 4 * 4 + 70 * 3 * 4);
});

test("with a model folder, an example's tokens are what its tokenizer and chat template make of it, not characters / 4.2", (t) => {
  const ws = tempDir(t);
  const dir = tinyModelFolder(join(ws, "model"));
  editJson(join(dir, "tokenizer_config.json"), (o) => {
    o["chat_template"] = "{% for m in messages %}<s>{{ m.role }}\n{{ m.content }}</s>\n{% endfor %}{% if add_generation_prompt %}<s>assistant\n{% endif %}";
  });
  const rows = [{ question: "Mia has 3 apples and buys 4 more. How many?", answer: "3+4 = <<3+4=7>>7\n#### 7" }, { question: "Tom buys 12 pens for 2 dollars each.", answer: "12*2 = <<12*2=24>>24\n#### 24" }];
  writeFileSync(join(ws, "train.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const c = parseConfig({ ...config, data: { ...config.data, devSize: 0, testSize: 0 }, model: { ...config.model, init: "model", promptFormat: "chat", allowHighLearningRate: true } });
  const d = dataStats(c, ws);
  const format = promptFormatFor(loadTokenizer(dir), "chat", dir);
  const want = rows.map((r) => format.encodeSequence(r.question, r.answer));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.equal(d.exampleTokens, mean(want.map((s) => s.ids.length)));
  assert.equal(d.completionTokens, mean(want.map((s) => s.ids.length - s.promptLength)));
  // The template's turn markers count: more than the characters alone suggest.
  const chars = mean(rows.map((r) => (r.question + r.answer).length)) / 4.2;
  assert.ok(d.exampleTokens > chars, `${d.exampleTokens} tokens against ${chars} from characters`);
  // A new model's tokens: its run's base folder holds the tokenizer the run trained (plain prompt format).
  const fresh = parseConfig({ ...config, data: { ...config.data, devSize: 0, testSize: 0 } });
  const counted = dataStats({ ...fresh, model: { ...fresh.model, promptFormat: "plain" } }, ws, dir);
  assert.equal(counted.exampleTokens, mean(rows.map((r) => promptFormatFor(loadTokenizer(dir), "plain", dir).encodeSequence(r.question, r.answer).ids.length)));
  assert.equal(dataStats(fresh, ws).exampleTokens, mean(rows.map((r) => (r.question + r.answer).length)) / 4.2, "no run yet: characters");
  // The run's training rate (rationale tokens a second) becomes whole-sequence tokens a second.
  const stage = { state: "done" as const, counts: { tokens: 1000, ms: 1000 } };
  const m = { formatVersion: 1, runId: "r", mode: "dpo-st", createdAt: "", rounds: [{ round: 0, stages: { warmup: stage } }] } as unknown as RunManifest;
  assert.equal(ratesFromRun(m, 1e6, 1e6, 2.5)!.trainTokensPerSecond, 2500);
});

test("rates come from an earlier run's measured stages when there is one, scaled to a bigger model; the reference otherwise", (t) => {
  const stage = (tokens: number, ms: number) => ({ state: "done" as const, counts: { tokens, ms } });
  const m: RunManifest = {
    formatVersion: 1, runId: "2026-01-01-a", mode: "dpo-st", createdAt: "", rounds: [
      { round: 0, stages: { warmup: stage(10_000, 2_000) } },
      { round: 1, stages: { "sample-dpo": stage(3_000, 1_000), dpo: stage(2_000, 1_000), "sample-sft": { state: "running" as const, counts: { tokens: 1, ms: 1 } } } },
    ],
  } as unknown as RunManifest;
  const same = ratesFromRun(m, 1e6, 1e6)!;
  assert.deepEqual([same.trainTokensPerSecond, same.sampleTokensPerSecond], [4000, 3000], "running stages do not count");
  assert.match(same.basis, /run 2026-01-01-a on this machine$/);
  const bigger = ratesFromRun(m, 1e6, 16e6)!;
  assert.ok(Math.abs(bigger.trainTokensPerSecond - 4000 / 8) < 1e-9, "16x the parameters: 16^0.75 = 8x slower");
  assert.equal(ratesFromRun({ ...m, rounds: [] }, 1e6, 1e6), null);
  assert.ok(ratesForSize(1e5).trainTokensPerSecond === ratesForSize(5e5).trainTokensPerSecond, "no faster than the reference below its size");
  assert.ok(ratesForSize(1e8).trainTokensPerSecond < ratesForSize(1e7).trainTokensPerSecond);
});

test("the estimate says what Start round runs next and how long, in words", (t) => {
  const ws = tempDir(t);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, "train.jsonl"), Array(100).fill(JSON.stringify({ question: "q".repeat(84), answer: "a".repeat(42) })).join("\n") + "\n");
  assert.equal(estimateNextRound(config, ws, null).what, "the warm-up and round 1");
  const warmed = { formatVersion: 1, runId: "r", mode: "dpo-st", createdAt: "", rounds: [{ round: 0, stages: { warmup: { state: "done" }, eval: { state: "done" } } }] } as unknown as RunManifest;
  assert.equal(estimateNextRound(config, ws, { manifest: warmed, config }).what, "round 1");
  assert.deepEqual([formatEstimate(14), formatEstimate(44), formatEstimate(330), formatEstimate(2 * 3600)], ["about 10 seconds", "about 40 seconds", "about 6 minutes", "about 2.0 hours"]);
});

test("Start Round asks before a job of more than an hour, saying how long, on what basis and what makes it shorter", () => {
  assert.equal(longJobQuestion({ seconds: 3600, what: "round 2", basis: "b" }), null);
  assert.equal(longJobQuestion({ seconds: Number.NaN, what: "round 2", basis: "b" }), null);
  const q = longJobQuestion({ seconds: 2.4 * 3600, what: "the warm-up and round 1", basis: "rates measured by run 2026-12-06-a on this machine" })!;
  assert.equal(q.message, "The warm-up and round 1 will take about 2.4 hours on this machine. Start it?");
  assert.match(q.detail, /^Estimated from rates measured by run 2026-12-06-a on this machine\. .*data\.maxTrainQuestions.*dpo\.steps.*resumes/);
});
