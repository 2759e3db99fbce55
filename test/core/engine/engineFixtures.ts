// Models, weights and sequences shared by the engine tests (conformance.test.ts and the per-engine files).
import assert from "node:assert/strict";
import { tinyConfig, type ModelConfig } from "../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../src/core/model/weights";
import type { EncodedSequence } from "../../../src/core/model/promptFormat";
import type { ComputeEngine } from "../../../src/core/engine/computeEngine";
import { Rng } from "../../../src/core/util/rng";

/** Three tiny models: tied and untied embeddings, attention with 2, 4 and 1 query heads per key/value head. */
export const CONFIGS: Record<string, ModelConfig> = {
  tied: tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 }),
  untied: tinyConfig(37, { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: false, rope_theta: 500000, rms_norm_eps: 1e-6 }),
  // Plain multi-head attention (G = 1), head dimension 12 and hidden 36: no power of two anywhere.
  mha: tinyConfig(29, { hidden_size: 36, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 3, num_key_value_heads: 3, max_position_embeddings: 64 }),
};

/** Random weights large enough for peaked attention and distinct logits, with norm weights away from 1. */
export function randomWeights(c: ModelConfig, seed: number): HostWeights {
  const w = initWeights(c, seed, 0.2);
  const rng = new Rng(seed + 100);
  for (const [name, t] of w) if (name.endsWith("norm.weight")) for (let i = 0; i < t.data.length; i++) t.data[i] = 1 + 0.3 * rng.normal();
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
