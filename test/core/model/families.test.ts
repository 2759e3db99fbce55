import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpuTf } from "../../helpers/tf";
import { repoRoot, tempDir } from "../../helpers/paths";
import { FAMILIES, FAMILY_HF_CONFIGS, randomWeights } from "../engine/engineFixtures";
import { toHfConfig, validateConfig, type ModelConfig } from "../../../src/core/model/config";
import { parameterCount, parameterShapes, ropeInverseFrequencies } from "../../../src/core/model/architecture";
import type { HostWeights } from "../../../src/core/model/weights";
import { TfLlama } from "../../../src/core/engine/tf/tfLlama";
import { OrtEngine } from "../../../src/core/engine/ort/runtime/ortEngine";
import { makeBatch } from "../../../src/core/train/batching";
import { loadCheckpoint, saveCheckpoint } from "../../../src/core/model/checkpoint";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";

// The model families users bring (Llama 3.x, SmolLM2-style Llama, Qwen2/2.5, Qwen3): their config.json files read
// as transformers reads them, everything else refused by name; and the forward pass of both engines against an
// independent float64 PyTorch implementation of transformers' modeling files (scripts/golden/families.py), which
// reads the same config.json itself.

const python = "/usr/bin/python3";
const hasTorch = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0;
const skipTorch = hasTorch ? false : "PyTorch absent (apt-get install python3-torch): skipped";

test("config.json of each family: the fields as transformers reads them, and our config.json reads back the same", () => {
  const { llama3, qwen2, qwen3 } = FAMILIES as Record<string, ModelConfig>;
  assert.equal(llama3!.model_type, "llama");
  assert.equal(llama3!.head_dim, 8);
  assert.deepEqual(llama3!.rope_scaling, { rope_type: "llama3", factor: 4, low_freq_factor: 1, high_freq_factor: 2, original_max_position_embeddings: 16 });
  assert.equal(llama3!.rope_theta, 10);
  assert.equal(llama3!.eos_token_id, 2);
  assert.deepEqual(llama3!.eos_token_ids, [2, 3]);
  assert.equal(llama3!.pad_token_id, 2, "no pad_token_id: the first EOS pads");
  assert.equal(llama3!.attention_bias, false);
  // Qwen2 has q/k/v biases although its config.json has no attention_bias key.
  assert.equal(qwen2!.attention_bias, true);
  const q2 = parameterShapes(qwen2!);
  assert.deepEqual(q2.get("model.layers.0.self_attn.q_proj.bias"), [32]);
  assert.deepEqual(q2.get("model.layers.1.self_attn.k_proj.bias"), [16]);
  assert.deepEqual(q2.get("model.layers.1.self_attn.v_proj.bias"), [16]);
  assert.ok(!q2.has("model.layers.0.self_attn.o_proj.bias"));
  assert.equal(qwen2!.head_dim, 8);
  assert.equal(qwen2!.rope_scaling, null);
  // Qwen3: per-head norms, head_dim 12 with hidden 32 and 4 heads, rope_theta inside rope_parameters.
  const q3 = parameterShapes(qwen3!);
  assert.equal(qwen3!.head_dim, 12);
  assert.equal(qwen3!.rope_theta, 1000000);
  assert.deepEqual(q3.get("model.layers.0.self_attn.q_norm.weight"), [12]);
  assert.deepEqual(q3.get("model.layers.0.self_attn.k_norm.weight"), [12]);
  assert.deepEqual(q3.get("model.layers.0.self_attn.q_proj.weight"), [48, 32]);
  assert.deepEqual(q3.get("model.layers.0.self_attn.o_proj.weight"), [32, 48]);
  assert.ok(![...q3.keys()].some((n) => n.endsWith(".bias")));
  // Qwen3 without head_dim takes Qwen3Config's 128; with attention_bias, q/k/v/o biases as Qwen3Attention has.
  const { head_dim: _, ...noHeadDim } = FAMILY_HF_CONFIGS["qwen3"]!;
  assert.equal(validateConfig(noHeadDim).head_dim, 128);
  const biased = parameterShapes(validateConfig({ ...FAMILY_HF_CONFIGS["qwen3"], attention_bias: true }));
  for (const proj of ["q_proj", "k_proj", "v_proj", "o_proj"]) assert.ok(biased.has(`model.layers.0.self_attn.${proj}.bias`), proj);
  // HF Llama's attention_bias: biases on all four projections.
  const llamaBiased = parameterShapes(validateConfig({ ...FAMILY_HF_CONFIGS["llama3"], attention_bias: true }));
  for (const proj of ["q_proj", "k_proj", "v_proj", "o_proj"]) assert.ok(llamaBiased.has(`model.layers.1.self_attn.${proj}.bias`), proj);
  // rope_parameters with llama3 scaling (newer transformers) reads as rope_theta + rope_scaling.
  const { rope_theta, rope_scaling, ...older } = FAMILY_HF_CONFIGS["llama3"]!;
  const newer = validateConfig({ ...older, rope_parameters: { rope_theta, ...(rope_scaling as object) } });
  assert.deepEqual(newer, llama3);
  // The older "type" spelling of rope_type.
  assert.deepEqual(validateConfig({ ...FAMILY_HF_CONFIGS["llama3"], rope_scaling: { ...(rope_scaling as object), rope_type: undefined, type: "llama3" } }), llama3);
  for (const [name, c] of Object.entries(FAMILIES)) {
    const hf = JSON.parse(JSON.stringify(toHfConfig(c))) as Record<string, unknown>;
    assert.deepEqual(validateConfig(hf), c, name);
    assert.equal(hf["model_type"], c.model_type);
    assert.deepEqual(hf["architectures"], [{ llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM" }[c.model_type]]);
    assert.equal(hf["head_dim"], c.head_dim);
    assert.ok(!("eos_token_ids" in hf), "eos_token_ids is ours: config.json lists them in eos_token_id");
  }
  assert.deepEqual(toHfConfig(llama3!)["eos_token_id"], [2, 3]);
  assert.equal(toHfConfig(qwen2!)["eos_token_id"], 2);
});

test("the config.json files of SmolLM2-135M, Llama-3.2-1B-Instruct, Qwen2.5-0.5B-Instruct and Qwen3-0.6B load, with their published parameter counts", () => {
  // As published on the Hugging Face Hub (keys transformers ignores, such as rope_interleaved, included).
  const smolLm2 = { architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 0, hidden_act: "silu", hidden_size: 576, initializer_range: 0.041666666666666664, intermediate_size: 1536, is_llama_config: true, max_position_embeddings: 8192, model_type: "llama", num_attention_heads: 9, num_hidden_layers: 30, num_key_value_heads: 3, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: "bfloat16", transformers_version: "4.40.1", use_cache: true, vocab_size: 49152 };
  const llama32 = { architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], head_dim: 64, hidden_act: "silu", hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false, model_type: "llama", num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" }, rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: "bfloat16", transformers_version: "4.45.0.dev0", use_cache: true, vocab_size: 128256 };
  const qwen25 = { architectures: ["Qwen2ForCausalLM"], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: "silu", hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21, model_type: "qwen2", num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: "bfloat16", transformers_version: "4.43.1", use_cache: true, use_sliding_window: false, vocab_size: 151936 };
  const qwen3 = { architectures: ["Qwen3ForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128, hidden_act: "silu", hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28, model_type: "qwen3", num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: "bfloat16", transformers_version: "4.51.0", use_cache: true, use_sliding_window: false, vocab_size: 151936 };
  // 134.5M, 1.24B, 494M and 596M (Qwen3-0.6B: 440M without the embeddings, as its model card says).
  assert.equal(parameterCount(validateConfig(smolLm2)), 134_515_008);
  assert.equal(parameterCount(validateConfig(llama32)), 1_235_814_400);
  assert.equal(parameterCount(validateConfig(qwen25)), 494_032_768);
  assert.equal(parameterCount(validateConfig(qwen3)), 596_049_920);
  assert.equal(validateConfig(smolLm2).head_dim, 64);
  assert.deepEqual(validateConfig(llama32).eos_token_ids, [128001, 128008, 128009]);
  assert.equal(validateConfig(llama32).eos_token_id, 128001);
  assert.throws(() => validateConfig({ ...qwen25, use_mrope: true }), /"use_mrope": true \(multimodal RoPE\) is not supported/);
});

test("each family's checkpoint (config.json and safetensors) loads back as the same config and weights", (t) => {
  const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7"], { vocabSize: 270 }));
  for (const [name, c] of Object.entries(FAMILIES)) {
    const dir = join(tempDir(t), name);
    const weights = randomWeights(c, 5);
    saveCheckpoint(dir, { config: c, weights, tokenizer });
    const loaded = loadCheckpoint(dir);
    assert.deepEqual(loaded.config, c, name);
    assert.deepEqual([...loaded.weights.keys()].sort(), [...weights.keys()].sort(), name);
    for (const [n, w] of weights) assert.deepEqual(loaded.weights.get(n)!.data, w.data, n);
  }
  // A Qwen2 folder whose safetensors lacks a bias, or a Qwen3 one without its norms, is refused by name.
  const qwen3 = FAMILIES["qwen3"]!;
  const dir = join(tempDir(t), "broken");
  const weights = randomWeights(qwen3, 5);
  weights.delete("model.layers.1.self_attn.k_norm.weight");
  saveCheckpoint(dir, { config: qwen3, weights, tokenizer });
  assert.throws(() => loadCheckpoint(dir), /missing parameter model\.layers\.1\.self_attn\.k_norm\.weight/);
});

test("unsupported families and options are refused, naming the model_type or field and listing what is supported", () => {
  const llama = FAMILY_HF_CONFIGS["llama3"]!;
  const qwen2 = FAMILY_HF_CONFIGS["qwen2"]!;
  const qwen3 = FAMILY_HF_CONFIGS["qwen3"]!;
  const supported = /supported model_type: "llama" .*"qwen2" .*"qwen3"/;
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["gemma3", { ...llama, model_type: "gemma3", architectures: ["Gemma3ForCausalLM"] }, /model_type "gemma3" is not supported/],
    ["phi3", { ...llama, model_type: "phi3" }, /model_type "phi3" is not supported/],
    ["mistral", { ...llama, model_type: "mistral", sliding_window: 4096 }, /model_type "mistral" is not supported/],
    ["qwen2_moe", { ...qwen2, model_type: "qwen2_moe" }, /model_type "qwen2_moe" is not supported/],
    ["sliding window on", { ...qwen2, use_sliding_window: true }, /"use_sliding_window": true .*is not supported/],
    ["sliding layers", { ...qwen3, layer_types: ["full_attention", "sliding_attention"] }, /"layer_types" .*sliding_attention.*is not supported/],
    ["experts", { ...qwen3, num_experts: 8 }, /"num_experts": 8 \(mixture of experts\) is not supported/],
    ["local experts", { ...llama, num_local_experts: 8 }, /"num_local_experts": 8/],
    ["mlp_bias", { ...llama, mlp_bias: true }, /"mlp_bias": true is not supported/],
    ["gelu", { ...llama, hidden_act: "gelu_pytorch_tanh" }, /"hidden_act" "gelu_pytorch_tanh" \(only "silu"\) is not supported/],
    ["partial rotary", { ...llama, partial_rotary_factor: 0.5 }, /"partial_rotary_factor": 0.5 is not supported/],
  ];
  for (const [label, raw, message] of cases) {
    assert.throws(() => validateConfig(raw, "x/config.json"), (e: Error) => message.test(e.message) && supported.test(e.message) && e.message.startsWith("x/config.json: "), label);
  }
  for (const type of ["yarn", "linear", "dynamic", "longrope"]) {
    assert.throws(() => validateConfig({ ...llama, rope_scaling: { rope_type: type, factor: 2.0 } }), new RegExp(`rope_scaling.rope_type "${type}" is not supported \\(supported: "default", "llama3"\\)`));
    assert.throws(() => validateConfig({ ...qwen3, rope_parameters: { rope_type: type, rope_theta: 10000, factor: 2.0 } }), new RegExp(`rope_parameters.rope_type "${type}" is not supported`));
  }
  assert.throws(() => validateConfig({ ...llama, rope_scaling: { rope_type: "llama3", factor: 8 } }), /rope_scaling.low_freq_factor must be a positive number/);
  // Sliding window configured but off, and plain RoPE spelled out, are fine.
  assert.equal(validateConfig({ ...qwen2, rope_scaling: { rope_type: "default" } }).rope_scaling, null);
  assert.equal(validateConfig({ ...qwen3, num_experts: 0 }).model_type, "qwen3");
});

/** Golden logits and inverse frequencies for each family, from one run of the reference (it starts slowly). */
interface Golden {
  logits: number[][][];
  inv_freq: number[];
}
const IDS = [
  [1, 5, 9, 30, 2, 7, 7, 12, 3, 4, 36, 0, 17, 22, 8, 31, 19, 25, 11, 6],
  [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
];
/** The families, and two variants of the reference's own: Qwen3 with q/k/v/o biases, untied; Llama with attention_bias. */
const GOLDEN_CONFIGS: Record<string, Record<string, unknown>> = {
  ...FAMILY_HF_CONFIGS,
  "qwen3 with attention_bias, untied": { ...FAMILY_HF_CONFIGS["qwen3"], attention_bias: true, tie_word_embeddings: false },
  "llama with attention_bias, tied": { ...FAMILY_HF_CONFIGS["llama3"], attention_bias: true, tie_word_embeddings: true, rope_scaling: null, rope_theta: 500 },
};
let golden: Promise<Map<string, { config: ModelConfig; weights: HostWeights; want: Golden }>> | null = null;
function goldens(dir: string): Promise<Map<string, { config: ModelConfig; weights: HostWeights; want: Golden }>> {
  golden ??= Promise.resolve().then(() => {
    const entries = Object.entries(GOLDEN_CONFIGS).map(([name, raw], i) => {
      const config = validateConfig(raw, name);
      return { name, raw, config, weights: randomWeights(config, 31 + i) };
    });
    const job = join(dir, "families.json");
    const asJson = (w: HostWeights): Record<string, { shape: number[]; data: number[] }> => Object.fromEntries([...w].map(([n, t]) => [n, { shape: t.shape, data: Array.from(t.data) }]));
    writeFileSync(job, JSON.stringify({ models: entries.map((e) => ({ config: e.raw, weights: asJson(e.weights), ids: IDS })) }));
    const r = spawnSync(python, [join(repoRoot, "scripts/golden/families.py"), job], { encoding: "utf8", maxBuffer: 1 << 27 });
    assert.equal(r.status, 0, r.stderr);
    const out = (JSON.parse(r.stdout) as { models: Golden[] }).models;
    return new Map(entries.map((e, i) => [e.name, { config: e.config, weights: e.weights, want: out[i]! }]));
  });
  return golden;
}

test("llama3 RoPE scaling: all three frequency bands, by hand, in the reference and in architecture.ts", { skip: skipTorch }, async (t) => {
  const { config, want } = (await goldens(tempDir(t))).get("llama3")!;
  // head_dim 8, rope_theta 10: f_i = 10^(−i/4). L = 16, low_freq_factor 1, high_freq_factor 2, factor 4:
  // wavelength 2π/f below L/2 = 8 is kept, above L/1 = 16 is divided by 4, and between interpolated with
  // s = (L/λ − 1)/(2 − 1): f·((1 − s)/4 + s).
  const f = [1, 10 ** -0.25, 10 ** -0.5, 10 ** -0.75];
  const wavelength = f.map((x) => (2 * Math.PI) / x); // 6.28, 11.17, 19.87, 35.33
  assert.ok(wavelength[0]! < 8 && wavelength[1]! > 8 && wavelength[1]! < 16 && wavelength[2]! > 16, "one band each");
  const s = 16 / wavelength[1]! - 1; // 0.432
  const byHand = [1, f[1]! * ((1 - s) / 4 + s), f[2]! / 4, f[3]! / 4];
  byHand.forEach((x, i) => {
    assert.ok(Math.abs(want.inv_freq[i]! - x) < 1e-15, `reference inv_freq[${i}] = ${want.inv_freq[i]}, by hand ${x}`);
    assert.ok(Math.abs(ropeInverseFrequencies(config)[i]! - x) < 1e-15, `architecture.ts inv_freq[${i}] = ${ropeInverseFrequencies(config)[i]}, by hand ${x}`);
  });
  assert.ok(Math.abs(byHand[1]! - 0.32278) < 1e-5, String(byHand[1])); // 0.5623 · (0.5677 / 4 + 0.4323)
});

for (const name of Object.keys(GOLDEN_CONFIGS)) {
  test(`${name}: TF.js logits and ONNX Runtime log-probabilities equal the independent float64 PyTorch implementation`, { skip: skipTorch }, async (t) => {
    const { config, weights, want } = (await goldens(tempDir(t))).get(name)!;
    const tf = await cpuTf();
    const model = new TfLlama(tf, config, weights);
    const got = tf.tidy(() => model.forward(tf.tensor2d(IDS, [IDS.length, IDS[0]!.length], "int32")).logits.arraySync() as number[][][]);
    model.dispose();
    let worst = 0;
    want.logits.forEach((row, b) => row.forEach((pos, i) => pos.forEach((x, v) => (worst = Math.max(worst, Math.abs(x - got[b]![i]![v]!))))));
    assert.ok(worst < 1e-4, `max |tfjs − torch| = ${worst}`);
    // ORT through its log-prob graph: every target's log-probability against the reference's log-softmax.
    const seqs = IDS.map((ids) => ({ ids, promptLength: 1 }));
    const batch = makeBatch(seqs, config.pad_token_id, 64);
    const engine = new OrtEngine(config, weights, { threads: 1 });
    const lp = await engine.tokenLogProbs(batch);
    engine.dispose();
    let worstLp = 0;
    want.logits.forEach((row, b) =>
      row.slice(0, -1).forEach((pos, i) => {
        const m = Math.max(...pos);
        const lse = m + Math.log(pos.reduce((a, x) => a + Math.exp(x - m), 0));
        const ref = pos[IDS[b]![i + 1]!]! - lse;
        worstLp = Math.max(worstLp, Math.abs(ref - lp[b * batch.length + i]!));
      }),
    );
    assert.ok(worstLp < 1e-4, `max |ort − torch| log-prob = ${worstLp}`);
    t.diagnostic(`max |Δ logit| tfjs ${worst.toExponential(2)}; max |Δ log-prob| ort ${worstLp.toExponential(2)}`);
  });
}

test("qwen2 from a sharded bf16 folder: loaded weights are the bf16 values exactly, logits equal the float64 reference on them, and a re-save keeps config.json and the bytes", { skip: skipTorch }, async (t) => {
  const dir = tempDir(t);
  const raw = FAMILY_HF_CONFIGS["qwen2"]!;
  const config = validateConfig(raw, "qwen2");
  const weights = randomWeights(config, 77);
  const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples."], { vocabSize: 260 }));
  // Written as a hub folder would be: the source's config.json, bf16, several shards with an index.
  saveCheckpoint(join(dir, "src"), { config, weights, tokenizer, source: { config: { ...raw, torch_dtype: "bfloat16" }, dtype: "BF16" } }, {}, { maxShardBytes: 4096 });
  const shards = readdirSync(join(dir, "src")).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length >= 3, `shards: ${shards.join(", ")}`);
  const loaded = loadCheckpoint(join(dir, "src"));
  // bf16 by hand: round to nearest even on the top 16 bits of each float32.
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  const bf16 = (x: number): number => {
    asFloat[0] = x;
    const u = bits[0]!;
    bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
    return asFloat[0]!;
  };
  for (const [name, w] of weights) {
    const got = loaded.weights.get(name)!.data;
    for (let i = 0; i < w.data.length; i++) if (got[i] !== bf16(w.data[i]!)) assert.fail(`${name}[${i}]: loaded ${got[i]}, bf16 of ${w.data[i]} is ${bf16(w.data[i]!)}`);
  }
  const job = join(dir, "job.json");
  writeFileSync(job, JSON.stringify({ models: [{ config: raw, weights: Object.fromEntries([...loaded.weights].map(([n, w]) => [n, { shape: w.shape, data: Array.from(w.data) }])), ids: IDS }] }));
  const r = spawnSync(python, [join(repoRoot, "scripts/golden/families.py"), job], { encoding: "utf8", maxBuffer: 1 << 27 });
  assert.equal(r.status, 0, r.stderr);
  const want = (JSON.parse(r.stdout) as { models: Golden[] }).models[0]!;
  const tf = await cpuTf();
  const model = new TfLlama(tf, loaded.config, loaded.weights);
  const got = tf.tidy(() => model.forward(tf.tensor2d(IDS, [IDS.length, IDS[0]!.length], "int32")).logits.arraySync() as number[][][]);
  model.dispose();
  let worst = 0;
  want.logits.forEach((row, b) => row.forEach((pos, i) => pos.forEach((x, v) => (worst = Math.max(worst, Math.abs(x - got[b]![i]![v]!))))));
  assert.ok(worst < 1e-4, `max |tfjs − torch| = ${worst}`);
  t.diagnostic(`qwen2 from bf16 shards: max |Δ logit| ${worst.toExponential(2)}`);
  // Saved again (as a trained model is): the same config.json apart from our own keys, the same bf16 bytes.
  saveCheckpoint(join(dir, "again"), loaded, {}, { maxShardBytes: 4096 });
  const a = JSON.parse(readFileSync(join(dir, "src", "config.json"), "utf8")) as Record<string, unknown>;
  const b = JSON.parse(readFileSync(join(dir, "again", "config.json"), "utf8")) as Record<string, unknown>;
  const ours = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !k.startsWith("selftrain_")));
  assert.deepEqual(ours(b), ours(a));
  for (const f of shards) assert.ok(readFileSync(join(dir, "src", f)).equals(readFileSync(join(dir, "again", f))), f);
});
