// `selftrain model inspect`, `model score` and `init --model` on model folders the test writes itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint } from "../../src/core/model/checkpoint";
import { tinyConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { trainBpe } from "../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../src/core/tokenizer/tokenizer";
import { TfLlama } from "../../src/core/engine/tf/tfLlama";
import { readSafetensors, writeSafetensors } from "../../src/core/model/safetensors";
import { estimateMemory, memoryVerdict, VOCAB_CHUNK, WHOLE_VOCABULARY } from "../../src/core/model/memoryEstimate";
import { VOCAB_CHUNK_ROWS, WHOLE_VOCABULARY_ROWS } from "../../src/core/engine/ort/llama/vocabularyChunks";
import { cpuTf } from "../helpers/tf";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const skip = existsSync(cli) ? false : "dist/cli.js not built";

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7", "Tom buys 12 pens for 2 dollars each."], { vocabSize: 280 }));
const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64 });

function modelFolder(dir: string): string {
  saveCheckpoint(dir, { config, weights: initWeights(config, 5, 0.3), tokenizer });
  return dir;
}

test("model inspect: what the folder holds and a memory verdict; a bad folder gets one line and exit 1", { skip }, (t) => {
  const dir = modelFolder(join(tempDir(t), "m"));
  const r = run("model", "inspect", dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^family {6}llama$/m);
  assert.match(r.stdout, /^weights {5}F32, one file/m);
  assert.match(r.stdout, new RegExp(`^vocabulary  ${config.vocab_size}, embeddings tied to the output$`, "m"));
  assert.match(r.stdout, /^SFT .* fits$/m);
  assert.match(r.stdout, /verdict: fits$/m);

  const bad = (what: string, change: () => void, reason: RegExp) => {
    change();
    const b = run("model", "inspect", dir);
    assert.equal(b.status, 1, what);
    assert.equal(b.stderr.trim().split("\n").length, 1, `${what}: ${b.stderr}`);
    assert.match(b.stderr, reason, what);
  };
  const cfg = readFileSync(join(dir, "config.json"), "utf8");
  bad("unsupported family", () => writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(cfg), model_type: "gemma3" })), /model_type "gemma3" is not supported/);
  writeFileSync(join(dir, "config.json"), cfg);
  const st = readSafetensors(join(dir, "model.safetensors"));
  const tensors = new Map(st.tensors);
  tensors.delete("model.layers.1.mlp.up_proj.weight");
  bad("missing tensor", () => writeSafetensors(join(dir, "model.safetensors"), tensors), /missing parameter model\.layers\.1\.mlp\.up_proj\.weight/);
  bad("no tokenizer", () => {
    writeSafetensors(join(dir, "model.safetensors"), st.tensors);
    rmSync(join(dir, "tokenizer.json"));
  }, /no tokenizer\.json/);
  bad("not a model folder", () => rmSync(join(dir, "config.json")), /no config\.json/);
});

test("model score: log p(ids[t] | ids[<t]) per line, equal to the log-softmax of a full forward pass", { skip }, async (t) => {
  const dir = modelFolder(join(tempDir(t), "m"));
  const ids = [[1, 17, 40, 99, 5, 6, 200, 3], [9, 4], [12]];
  const file = join(tempDir(t), "ids.jsonl");
  writeFileSync(file, ids.map((x) => JSON.stringify({ ids: x })).join("\n") + "\n");
  const r = run("model", "score", dir, "--ids", file);
  assert.equal(r.status, 0, r.stderr);
  const got = r.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { logprobs: number[] }).logprobs);
  assert.deepEqual(got.map((g) => g.length), [7, 1, 0]);
  // The independent path: TF.js's full forward, log-softmax at every position.
  const tf = await cpuTf();
  const { loadCheckpoint } = await import("../../src/core/model/checkpoint");
  const ckpt = loadCheckpoint(dir);
  const model = new TfLlama(tf, ckpt.config, ckpt.weights);
  let worst = 0;
  for (const [b, row] of ids.entries()) {
    const lp = tf.tidy(() => tf.logSoftmax(model.forward(tf.tensor2d([row], [1, row.length], "int32")).logits).arraySync() as number[][][]);
    for (let i = 1; i < row.length; i++) worst = Math.max(worst, Math.abs(lp[0]![i - 1]![row[i]!]! - got[b]![i - 1]!));
  }
  model.dispose();
  assert.ok(worst < 1e-4, `max |score − log-softmax| = ${worst}`);

  writeFileSync(file, `{"ids": [1, 2]}\n{"ids": [1, ${config.vocab_size}]}\n`);
  const bad = run("model", "score", dir, "--ids", file);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /ids\.jsonl:2: \d+ is not a token id of this model/);
});

test("init --model: model.init points at the folder; a bad folder is refused before anything is written", { skip }, (t) => {
  const ws = tempDir(t);
  mkdirSync(join(ws, "data"));
  writeFileSync(join(ws, "data", "train.jsonl"), JSON.stringify({ question: "1+1?", answer: "<<1+1=2>>2\n#### 2" }) + "\n");
  const dir = modelFolder(join(ws, "models", "base"));
  const broken = join(ws, "models", "broken");
  mkdirSync(broken, { recursive: true });
  let r = run("init", "-w", ws, "--train", join(ws, "data", "train.jsonl"), "--model", broken);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot use this model: .*broken: no config\.json/);
  assert.ok(!existsSync(join(ws, ".selftrain", "config.json")), "a config was written for a bad model folder");
  r = run("init", "-w", ws, "--train", join(ws, "data", "train.jsonl"), "--model", dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^model: llama, \d+K parameters, F32, one file$/m);
  assert.equal(JSON.parse(readFileSync(join(ws, ".selftrain", "config.json"), "utf8")).model.init, join("models", "base"));
});

test("init --model writes a pretrained model's settings and says so; model inspect shows them; a learning rate above 1e-3 is refused on it, a new model keeps its own", { skip }, (t) => {
  const ws = tempDir(t);
  mkdirSync(join(ws, "data"));
  const train = join(ws, "data", "train.jsonl");
  writeFileSync(train, JSON.stringify({ question: "1+1?", answer: "<<1+1=2>>2\n#### 2" }) + "\n");
  const dir = modelFolder(join(ws, "models", "base"));
  let r = run("init", "-w", ws, "--train", train, "--model", dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^# settings for a pretrained model \(model\.init is a folder\): DPO lr 3e-7, beta 0\.1; SFT lr 1e-5, 2 epochs; max length 640, prompt 256: see docs\/pretrained-defaults\.md$/m);
  const file = join(ws, ".selftrain", "config.json");
  const c = JSON.parse(readFileSync(file, "utf8"));
  assert.deepEqual(
    [c.warmup.learningRate, c.sft.learningRate, c.dpo.learningRate, c.dpo.beta, c.dpo.steps, c.sft.epochs, c.sft.warmupRatio, c.sft.maxLength, c.dpo.maxLength, c.sft.maxPromptLength, c.dpo.maxPromptLength, c.model.allowHighLearningRate],
    [1e-5, 1e-5, 3e-7, 0.1, 100, 2, 0.03, 640, 640, 256, 256, false],
  );

  r = run("model", "inspect", dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^settings for this model if you init with it \(a pretrained model's: docs\/pretrained-defaults\.md\):$/m);
  assert.match(r.stdout, /^ {2}DPO {9}lr 3e-7, 100 steps, batch 32 pairs in micro-batches of 2, warm-up ratio 0\.03, beta 0\.1$/m);
  assert.match(r.stdout, /^ {2}SFT {9}lr 1e-5, 2 epochs, /m);
  assert.match(r.stdout, /^ {2}lengths {5}at most 640 tokens \(DPO 640\), prompts cut to their last 256 when longer$/m);
  assert.match(r.stdout, /^peak memory \(ONNX Runtime on the CPU, settings from the pretrained model's defaults above\):$/m);

  // The from-scratch rate written into the pretrained workspace's config is refused wherever it is read, naming the setting.
  writeFileSync(file, JSON.stringify({ ...c, sft: { ...c.sft, learningRate: 3e-3 } }, null, 2));
  r = run("model", "inspect", dir, "-w", ws);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config\.json: sft\.learningRate is 0\.003, above 1e-3 on a pretrained model \(model\.init is a folder\): .*set model\.allowHighLearningRate to true to use it on purpose/);
  writeFileSync(file, JSON.stringify({ ...c, model: { ...c.model, allowHighLearningRate: true }, sft: { ...c.sft, learningRate: 3e-3 } }, null, 2));
  assert.equal(run("model", "inspect", dir, "-w", ws).status, 0);

  const fresh = tempDir(t);
  r = run("init", "-w", fresh, "--train", train);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^# settings for a model trained from scratch \(model\.init "new"\): SFT lr 3e-3, 8 epochs; DPO lr 1e-5, beta 0\.1; max length 320, prompt 256$/m);
  const n = JSON.parse(readFileSync(join(fresh, ".selftrain", "config.json"), "utf8"));
  assert.deepEqual([n.model.init, n.warmup.learningRate, n.sft.learningRate, n.dpo.learningRate, n.sft.maxLength], ["new", 3e-3, 3e-3, 1e-5, 320]);
});

test("the memory estimate at SmolLM2-135M's shape matches the engine's measured peaks (SFT 4.35 GiB, DPO of 4 pairs 4.16 GiB, 8 × 128 tokens, bench:train --preset smollm2-135m) within 10%; a small machine gets advice", () => {
  assert.equal(VOCAB_CHUNK, VOCAB_CHUNK_ROWS, "the estimate's vocabulary chunk is the engine's");
  assert.equal(WHOLE_VOCABULARY, WHOLE_VOCABULARY_ROWS, "the estimate's whole-vocabulary limit is the engine's");
  const smol = tinyConfig(49152, { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 2048 });
  const [sft, dpo, sampling] = estimateMemory(smol, { sft: { microBatchSize: 8, maxLength: 128 }, dpo: { microBatchSize: 4, maxLength: 128 }, sampling: { batchSize: 16, maxNewTokens: 256, promptTokens: 64 } });
  for (const [e, measured] of [[sft!, 4.35], [dpo!, 4.16]] as const) {
    const gb = e.bytes / 2 ** 30;
    assert.ok(Math.abs(gb - measured) / measured < 0.1, `${e.activity} estimate ${gb.toFixed(2)} GiB against ${measured} measured`);
  }
  assert.ok(sampling!.bytes < sft!.bytes);
  const v = memoryVerdict([sft!, dpo!, sampling!], 4 * 2 ** 30);
  assert.equal(v.fits, false);
  assert.match(v.lines[0]!, /SFT .*does not fit: lower sft\/warmup\.microBatchSize or maxLength/);
  assert.match(v.lines.at(-1)!, /this machine: 4\.0 GB of memory; verdict: does not fit/);
});
