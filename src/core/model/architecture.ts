/**
 * The architecture both engines build their forward pass from: parameter names and shapes, the head dimension,
 * the attention biases and q/k norms of each family, and the rotary-embedding tables. Engine-neutral (plain
 * arrays), so that a model family's differences are stated here once rather than in each engine:
 *
 *   llama  (Llama 2/3.x, SmolLM2): the base; q/k/v/o biases when attention_bias; llama3 RoPE scaling
 *   qwen2  (Qwen2, Qwen2.5):       biases on q, k and v (none on o_proj)
 *   qwen3:                         RMSNorm over each head's head_dim of q and k (q_norm, k_norm), after the
 *                                  projections and before RoPE; q/k/v/o biases when attention_bias
 *
 * Shapes: D hidden, H heads, KV key/value heads, hd head dimension, I intermediate, V vocabulary.
 */
import type { ModelConfig } from "./config";

export function headDim(c: ModelConfig): number {
  return c.head_dim;
}

/** Which attention projections carry a bias: q, k and v together, and o. */
export function attentionBiases(c: ModelConfig): { qkv: boolean; o: boolean } {
  if (c.model_type === "qwen2") return { qkv: true, o: false };
  return { qkv: c.attention_bias, o: c.attention_bias };
}

/** Whether q and k are RMS-normalised per head (weights self_attn.q_norm / k_norm, [hd]) before RoPE. */
export function hasQkNorm(c: ModelConfig): boolean {
  return c.model_type === "qwen3";
}

/** Hugging Face *ForCausalLM parameter names and shapes ([out, in] for linear layers), in the modules' order. */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  const D = c.hidden_size;
  const hd = headDim(c);
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const bias = attentionBiases(c);
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocab_size, D]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [D]);
    for (const [proj, out] of [["q_proj", H * hd], ["k_proj", KV * hd], ["v_proj", KV * hd]] as const) {
      m.set(`${p}.self_attn.${proj}.weight`, [out, D]);
      if (bias.qkv) m.set(`${p}.self_attn.${proj}.bias`, [out]);
    }
    m.set(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    if (bias.o) m.set(`${p}.self_attn.o_proj.bias`, [D]);
    if (hasQkNorm(c)) {
      m.set(`${p}.self_attn.q_norm.weight`, [hd]);
      m.set(`${p}.self_attn.k_norm.weight`, [hd]);
    }
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

/** Whether AdamW's weight decay applies: not to norm weights nor biases (transformers Trainer's parameter groups). */
export function isDecayed(param: string): boolean {
  return !param.endsWith("norm.weight") && !param.endsWith(".bias");
}

/**
 * RoPE inverse frequencies θ^(−2i/hd), i < hd/2, [hd/2], with rope_type "llama3" scaling where configured
 * (transformers' _compute_llama3_parameters): with wavelength λ = 2π/f and L = original_max_position_embeddings,
 *   λ < L / high_freq_factor: f (high frequencies kept)
 *   λ > L / low_freq_factor:  f / factor (low frequencies stretched)
 *   otherwise:                (1 − s)·f/factor + s·f, s = (L/λ − low_freq_factor) / (high_freq_factor − low_freq_factor)
 */
export function ropeInverseFrequencies(c: ModelConfig): Float64Array {
  const hd = headDim(c);
  const inv = Float64Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(c.rope_theta, (2 * i) / hd));
  const s = c.rope_scaling;
  if (!s) return inv;
  const L = s.original_max_position_embeddings;
  const lowFreqWavelen = L / s.low_freq_factor;
  const highFreqWavelen = L / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth = (L / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin of the rotary angles of positions 0…rows−1, [rows, hd]: each row's two halves are equal. */
export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * The RoPE tables in Hugging Face's layout (rotate_half pairs dimension i with i + hd/2, so each frequency fills
 * both halves). Angles are taken in float64 and rounded to float32 once: Hugging Face computes them in float32,
 * which differs by under an ulp or so at small positions; both engines use these same numbers.
 */
export function ropeTables(c: ModelConfig, rows = c.max_position_embeddings): RopeTables {
  if (!Number.isInteger(rows) || rows < 1 || rows > c.max_position_embeddings) throw new Error(`RoPE tables of ${rows} rows: must be 1 to max_position_embeddings (${c.max_position_embeddings})`);
  const hd = headDim(c);
  const half = hd / 2;
  const invFreq = ropeInverseFrequencies(c);
  const cos = new Float32Array(rows * hd);
  const sin = new Float32Array(rows * hd);
  for (let p = 0; p < rows; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * (invFreq[i] as number);
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(angle);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
