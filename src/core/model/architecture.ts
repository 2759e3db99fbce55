/**
 * The architecture both engines build their forward pass from: parameter names and shapes, the head dimension
 * and the rotary-embedding tables. Engine-neutral (plain arrays), so that a model family's differences (biases,
 * q/k norms, RoPE scaling) are stated here once rather than in each engine.
 *
 * Shapes: D hidden, H heads, KV key/value heads, hd head dimension, I intermediate, V vocabulary.
 */
import type { ModelConfig } from "./config";

export function headDim(c: ModelConfig): number {
  return c.hidden_size / c.num_attention_heads;
}

/** Hugging Face `LlamaForCausalLM` parameter names and shapes ([out, in] for linear layers). */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  const D = c.hidden_size;
  const hd = headDim(c);
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocab_size, D]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [D]);
    m.set(`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * hd, D]);
    m.set(`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * hd, D]);
    m.set(`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * hd, D]);
    m.set(`${p}.self_attn.o_proj.weight`, [D, c.num_attention_heads * hd]);
    m.set(`${p}.post_attention_layernorm.weight`, [D]);
    m.set(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, D]);
    m.set(`${p}.mlp.up_proj.weight`, [c.intermediate_size, D]);
    m.set(`${p}.mlp.down_proj.weight`, [D, c.intermediate_size]);
  }
  m.set("model.norm.weight", [D]);
  if (!c.tie_word_embeddings) m.set("lm_head.weight", [c.vocab_size, D]);
  return m;
}

export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const s of parameterShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** RoPE inverse frequencies θ^(−2i/hd), i < hd/2, [hd/2]. */
export function ropeInverseFrequencies(c: ModelConfig): Float64Array {
  const hd = headDim(c);
  return Float64Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(c.rope_theta, (2 * i) / hd));
}

/** cos and sin of every position's rotary angles, [maxPos, hd]: each row's two halves are equal. */
export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * The RoPE tables in Hugging Face's layout (rotate_half pairs dimension i with i + hd/2, so each frequency fills
 * both halves). Angles are taken in float64 and rounded to float32 once: Hugging Face computes them in float32,
 * which differs by under an ulp or so at small positions; both engines use these same numbers.
 */
export function ropeTables(c: ModelConfig): RopeTables {
  const hd = headDim(c);
  const half = hd / 2;
  const invFreq = ropeInverseFrequencies(c);
  const cos = new Float32Array(c.max_position_embeddings * hd);
  const sin = new Float32Array(c.max_position_embeddings * hd);
  for (let p = 0; p < c.max_position_embeddings; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * (invFreq[i] as number);
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(angle);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
