import { headDim } from "./architecture";

/**
 * The model configuration, in Hugging Face `LlamaConfig` names so that a local `config.json` of a
 * Llama-architecture model loads as it is, and ours load in transformers.
 */
export interface ModelConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number;
  pad_token_id: number;
}

/** Bumped when the checkpoint layout changes; checked on load. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** A small model that learns the synthetic task on a laptop CPU (about 0.8M parameters at vocab 512). */
export function tinyConfig(vocabSize: number, overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    vocab_size: vocabSize,
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    ...overrides,
  };
}

/** Validates a config (from a file or from settings); errors name the field. */
export function validateConfig(raw: unknown, source = "config.json"): ModelConfig {
  if (typeof raw !== "object" || raw === null) throw new Error(`${source}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  const int = (k: string, min = 1): number => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new Error(`${source}: "${k}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (k: string, fallback: number): number => {
    const v = r[k] ?? fallback;
    if (typeof v !== "number" || !(v > 0)) throw new Error(`${source}: "${k}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const tokenId = (k: string): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    const first = Array.isArray(v) ? v[0] : v; // some configs list several EOS ids
    if (typeof first !== "number" || !Number.isInteger(first) || first < 0) throw new Error(`${source}: "${k}" must be a token id, got ${JSON.stringify(v)}`);
    return first;
  };
  if (r["model_type"] !== undefined && r["model_type"] !== "llama") {
    throw new Error(`${source}: model_type "${String(r["model_type"])}" is not supported (only "llama" architectures)`);
  }
  const heads = int("num_attention_heads");
  const c: ModelConfig = {
    vocab_size: int("vocab_size"),
    hidden_size: int("hidden_size"),
    intermediate_size: int("intermediate_size"),
    num_hidden_layers: int("num_hidden_layers"),
    num_attention_heads: heads,
    num_key_value_heads: r["num_key_value_heads"] === undefined ? heads : int("num_key_value_heads"),
    max_position_embeddings: int("max_position_embeddings"),
    rms_norm_eps: num("rms_norm_eps", 1e-6),
    rope_theta: num("rope_theta", 10000),
    tie_word_embeddings: r["tie_word_embeddings"] === undefined ? false : Boolean(r["tie_word_embeddings"]),
    bos_token_id: tokenId("bos_token_id"),
    eos_token_id: tokenId("eos_token_id") ?? 2,
    pad_token_id: tokenId("pad_token_id") ?? tokenId("eos_token_id") ?? 0,
  };
  if (c.hidden_size % c.num_attention_heads !== 0) throw new Error(`${source}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${heads}`);
  if (headDim(c) % 2 !== 0) throw new Error(`${source}: head dimension ${headDim(c)} must be even for rotary embeddings`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) throw new Error(`${source}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}`);
  if (r["rope_scaling"] !== undefined && r["rope_scaling"] !== null) throw new Error(`${source}: rope_scaling is not supported`);
  return c;
}

/** The Hugging Face config.json of a model, with our format version. */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: "float32",
    ...c,
    selftrain_format_version: CHECKPOINT_FORMAT_VERSION,
  };
}
