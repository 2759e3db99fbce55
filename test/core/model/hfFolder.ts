/**
 * Random-weight model folders in the layout Hugging Face publishes them (config.json, generation_config.json,
 * tokenizer files, bf16/f16/f32 safetensors, sharded with model.safetensors.index.json), written here so that
 * tests need no download. Expected float32 values are decoded independently of src/core/model/safetensors.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors, type StoredTensor } from "../../../src/core/model/safetensors";
import { saveTokenizer, type TextTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { Rng } from "../../../src/core/util/rng";

export type FolderDtype = "BF16" | "F16" | "F32";

export interface FolderSpec {
  dtype: FolderDtype;
  tied?: boolean;
  /** number of weight files; 1 writes model.safetensors, more write shards and an index */
  shards?: number;
  /** a tied folder that still carries lm_head.weight (transformers writes one for some models) */
  tiedHead?: boolean;
  /** rotary_emb.inv_freq buffers, as older transformers saved them */
  invFreq?: boolean;
  /** config fields to override or add */
  config?: Record<string, unknown>;
  generationConfig?: Record<string, unknown> | null;
  seed?: number;
}

export interface WrittenFolder {
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown> | null;
  /** every tensor written, its bytes as stored */
  stored: Map<string, StoredTensor>;
  /** float32 values of each tensor, decoded here from the stored bits */
  expected: Map<string, Float32Array>;
  /** tensor name -> file it was written to */
  fileOf: Map<string, string>;
}

/** LlamaForCausalLM parameter names and shapes, listed by hand (not from architecture.ts) so tests check it. */
export function llamaShapes(c: { vocab_size: number; hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number; num_key_value_heads: number; tie_word_embeddings: boolean }): Map<string, number[]> {
  const D = c.hidden_size, hd = D / c.num_attention_heads, kv = c.num_key_value_heads * hd, I = c.intermediate_size;
  const m = new Map<string, number[]>([["model.embed_tokens.weight", [c.vocab_size, D]]]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [D]);
    m.set(`${p}.self_attn.q_proj.weight`, [D, D]);
    m.set(`${p}.self_attn.k_proj.weight`, [kv, D]);
    m.set(`${p}.self_attn.v_proj.weight`, [kv, D]);
    m.set(`${p}.self_attn.o_proj.weight`, [D, D]);
    m.set(`${p}.post_attention_layernorm.weight`, [D]);
    m.set(`${p}.mlp.gate_proj.weight`, [I, D]);
    m.set(`${p}.mlp.up_proj.weight`, [I, D]);
    m.set(`${p}.mlp.down_proj.weight`, [D, I]);
  }
  m.set("model.norm.weight", [D]);
  if (!c.tie_word_embeddings) m.set("lm_head.weight", [c.vocab_size, D]);
  return m;
}

/** A Llama 3.2-style config.json: our fields plus ones we do not model, which saving must keep as they are. */
export function sourceConfig(vocabSize: number, dtype: FolderDtype, tied: boolean): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: [2, 5],
    hidden_act: "silu",
    hidden_size: 16,
    initializer_range: 0.02,
    intermediate_size: 24,
    max_position_embeddings: 64,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: 2,
    num_hidden_layers: 2,
    num_key_value_heads: 1,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    tie_word_embeddings: tied,
    torch_dtype: { BF16: "bfloat16", F16: "float16", F32: "float32" }[dtype],
    transformers_version: "4.45.0.dev0",
    use_cache: true,
    vocab_size: vocabSize,
    quantization_note: { "10": "integer-like keys", "2": [1, null, { deep: true }] },
  };
}

/** Random bits of a finite value of moderate size (|x| between 2^-12 and 2^4), sign random. */
function randomBits(rng: Rng, dtype: FolderDtype): number {
  const u = Math.floor(rng.next() * 2 ** 32) >>> 0;
  const sign = u & 1;
  if (dtype === "BF16") return (sign << 15) | ((115 + ((u >>> 1) % 16)) << 7) | ((u >>> 8) & 0x7f);
  if (dtype === "F16") return (sign << 15) | ((3 + ((u >>> 1) % 16)) << 10) | ((u >>> 8) & 0x3ff);
  return ((sign << 31) | ((115 + ((u >>> 1) % 16)) << 23) | ((u >>> 8) & 0x7fffff)) >>> 0;
}

/** IEEE half/bfloat16/single decoded by formula, in float64 (every such value is exact there). */
export function decodeBits(bits: number, dtype: FolderDtype): number {
  const [expBits, mantBits] = dtype === "F16" ? [5, 10] : dtype === "BF16" ? [8, 7] : [8, 23];
  const width = 1 + expBits + mantBits;
  const sign = (bits >>> (width - 1)) & 1 ? -1 : 1;
  const exp = (bits >>> mantBits) & ((1 << expBits) - 1);
  const mant = bits & ((1 << mantBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  if (exp === (1 << expBits) - 1) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** (1 - bias - mantBits);
  return sign * (1 + mant / 2 ** mantBits) * 2 ** (exp - bias);
}

/** Some edge values in every first norm weight: zeros of both signs, subnormals, the largest finite. */
function edgeBits(dtype: FolderDtype): number[] {
  if (dtype === "BF16") return [0x0000, 0x8000, 0x0001, 0x807f, 0x7f7f, 0x3f80];
  if (dtype === "F16") return [0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0x3c00];
  return [0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3f800000];
}

export function writeHfFolder(dir: string, tokenizer: TextTokenizer, spec: FolderSpec): WrittenFolder {
  const tied = spec.tied ?? false;
  const config = { ...sourceConfig(tokenizer.vocabSize, spec.dtype, tied), ...spec.config };
  const generationConfig = spec.generationConfig === undefined ? { _from_model_config: false, bos_token_id: 1, do_sample: true, eos_token_id: [7, 2], temperature: 0.6, top_p: 0.9, transformers_version: "4.45.0.dev0" } : spec.generationConfig;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  if (generationConfig) writeFileSync(join(dir, "generation_config.json"), JSON.stringify(generationConfig, null, 2));
  saveTokenizer(tokenizer.files, dir);

  const shapes = llamaShapes(config as Parameters<typeof llamaShapes>[0]);
  if (tied && spec.tiedHead) shapes.set("lm_head.weight", [tokenizer.vocabSize, config.hidden_size as number]);
  if (spec.invFreq) shapes.set("model.layers.0.self_attn.rotary_emb.inv_freq", [4]);
  const rng = new Rng(spec.seed ?? 7);
  const size = spec.dtype === "F32" ? 4 : 2;
  const stored = new Map<string, StoredTensor>();
  const expected = new Map<string, Float32Array>();
  let first = true;
  for (const [name, shape] of shapes) {
    const count = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(count * size);
    const view = new DataView(bytes.buffer);
    const values = new Float32Array(count);
    const edges = first && name.endsWith("norm.weight") ? edgeBits(spec.dtype) : [];
    if (edges.length) first = false;
    for (let i = 0; i < count; i++) {
      const bits = i < edges.length ? edges[i]! : randomBits(rng, spec.dtype);
      if (size === 4) view.setUint32(i * 4, bits, true);
      else view.setUint16(i * 2, bits, true);
      values[i] = decodeBits(bits, spec.dtype);
    }
    stored.set(name, { dtype: spec.dtype, shape, bytes });
    expected.set(name, values);
  }

  const names = [...stored.keys()];
  const shards = spec.shards ?? 1;
  const fileOf = new Map<string, string>();
  const files = shards === 1 ? ["model.safetensors"] : Array.from({ length: shards }, (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`);
  names.forEach((n, i) => fileOf.set(n, files[Math.floor((i * shards) / names.length)]!));
  for (const file of files) {
    writeSafetensors(join(dir, file), new Map([...stored].filter(([n]) => fileOf.get(n) === file)), { format: "pt" });
  }
  if (shards > 1) {
    const total = [...stored.values()].reduce((s, t) => s + t.bytes.length, 0);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: Object.fromEntries(fileOf) }, null, 2));
  }
  return { config, generationConfig, stored, expected, fileOf };
}
