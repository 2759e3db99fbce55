// Models, weights and sequences shared by the engine tests (conformance.test.ts and the per-engine files).
import assert from "node:assert/strict";
import { tinyConfig, validateConfig, type ModelConfig } from "../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../src/core/model/weights";
import type { EncodedSequence } from "../../../src/core/model/promptFormat";
import type { ComputeEngine } from "../../../src/core/engine/computeEngine";
import { Rng } from "../../../src/core/util/rng";

/**
 * Three tiny Llama models: tied and untied embeddings, attention with 2, 4 and 1 query heads per key/value head;
 * then the families users bring (FAMILIES, below).
 */
export const CONFIGS: Record<string, ModelConfig> = {
  tied: tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 }),
  untied: tinyConfig(37, { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: false, rope_theta: 500000, rms_norm_eps: 1e-6 }),
  // Plain multi-head attention (G = 1), head dimension 12 and hidden 36: no power of two anywhere.
  mha: tinyConfig(29, { hidden_size: 36, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 3, num_key_value_heads: 3, max_position_embeddings: 64 }),
};

/**
 * The model families users bring, as their config.json files say them (tiny sizes, random weights):
 *   llama3: Llama 3.x: llama3 RoPE scaling whose three frequency bands all occur (head_dim 8, rope_theta 10,
 *           original_max_position_embeddings 16: wavelengths 6.3 < 16/2, 11.2 between, 19.9 and 35.3 > 16/1),
 *           explicit head_dim, several EOS ids, untied;
 *   qwen2:  Qwen2.5: q/k/v biases without an attention_bias key, sliding window configured but off, tied;
 *   qwen3:  Qwen3: per-head q/k RMSNorm, head_dim 12 ≠ hidden / heads = 8, rope_parameters (newer
 *           transformers' spelling), layer_types, tied.
 */
export const FAMILY_HF_CONFIGS: Record<string, Record<string, unknown>> = {
  llama3: {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 41,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10.0,
    rope_scaling: { rope_type: "llama3", factor: 4.0, low_freq_factor: 1.0, high_freq_factor: 2.0, original_max_position_embeddings: 16 },
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    hidden_act: "silu",
    pretraining_tp: 1,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: [2, 3],
    torch_dtype: "bfloat16",
  },
  qwen2: {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: 43,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    rope_scaling: null,
    sliding_window: 32768,
    max_window_layers: 21,
    use_sliding_window: false,
    attention_dropout: 0.0,
    hidden_act: "silu",
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: "bfloat16",
  },
  qwen3: {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    vocab_size: 37,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 12,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_parameters: { rope_type: "default", rope_theta: 1000000.0 },
    attention_bias: false,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: 28,
    layer_types: ["full_attention", "full_attention"],
    hidden_act: "silu",
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    dtype: "bfloat16",
  },
};

/** The families' configs as the engines get them. */
export const FAMILIES: Record<string, ModelConfig> = Object.fromEntries(Object.entries(FAMILY_HF_CONFIGS).map(([k, raw]) => [k, validateConfig(raw, k)]));
Object.assign(CONFIGS, FAMILIES);

/**
 * Random weights large enough for peaked attention and distinct logits, with norm weights (q/k norms too) away
 * from 1 and biases large (std 1) so that a bias dropped or misplaced shows.
 */
export function randomWeights(c: ModelConfig, seed: number): HostWeights {
  const w = initWeights(c, seed, 0.2);
  const rng = new Rng(seed + 100);
  for (const [name, t] of w) if (name.endsWith("norm.weight")) for (let i = 0; i < t.data.length; i++) t.data[i] = 1 + 0.3 * rng.normal();
  for (const [name, t] of w) if (name.endsWith(".bias")) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
  return w;
}

/** Sequences of 4–20 tokens (BOS, random body, EOS) with prompts of 1–4 tokens. */
export function randomSequences(c: ModelConfig, n: number, seed: number, minLen = 4, maxLen = 20): EncodedSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = rng.int(minLen, maxLen);
    const ids = [1, ...Array.from({ length: len - 2 }, () => rng.int(3, c.vocab_size - 1)), 2];
    return { ids, promptLength: rng.int(1, 4) };
  });
}

/** ‖a − b‖ / ‖b‖. */
export function relError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += ((a[i] as number) - (b[i] as number)) ** 2;
    n += (b[i] as number) ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function argmaxRows(l: Float32Array, rows: number, V: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < V; i++) if (l[r * V + i]! > l[r * V + best]!) best = i;
    return best;
  });
}

/**
 * Greedy decoding by the reference and the engine, the reference's tokens fed to both: asserts the same tokens
 * at every step and returns the largest logit difference, the tokens and the engine's session (disposed).
 */
export async function greedyParity(ref: ComputeEngine, engine: ComputeEngine, prompts: number[][], steps: number): Promise<{ worst: number; tokens: number[][]; disposed: { step(tokens: readonly number[]): Promise<Float32Array> } }> {
  const V = ref.config.vocab_size;
  const da = await ref.startDecoding(prompts);
  const db = await engine.startDecoding(prompts);
  let la = da.logits;
  let lb = db.logits;
  let worst = 0;
  const tokens: number[][] = [];
  for (let s = 0; s < steps; s++) {
    worst = Math.max(worst, maxAbsDiff(la, lb));
    const ta = argmaxRows(la, prompts.length, V);
    assert.deepEqual(argmaxRows(lb, prompts.length, V), ta, `step ${s}`);
    tokens.push(ta);
    if (s === steps - 1) break;
    la = await da.session.step(ta);
    lb = await db.session.step(ta);
  }
  da.session.dispose();
  db.session.dispose();
  return { worst, tokens, disposed: db.session };
}

/**
 * The families at finite-difference size (hidden 8, 2 layers): Llama 3 scaling with two of its bands, Qwen2's
 * q/k/v biases, Qwen3's q/k norms with head_dim 6 ≠ 8 / 2 and q/k/v/o biases (attention_bias).
 */
export const MICRO_FAMILIES: Record<string, ModelConfig> = {
  llama3: tinyConfig(11, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16, tie_word_embeddings: false, rope_theta: 10, rope_scaling: { rope_type: "llama3", factor: 4, low_freq_factor: 1, high_freq_factor: 2, original_max_position_embeddings: 16 } }),
  qwen2: tinyConfig(11, { model_type: "qwen2", hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16 }),
  qwen3: tinyConfig(11, { model_type: "qwen3", attention_bias: true, head_dim: 6, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16, tie_word_embeddings: false }),
};
