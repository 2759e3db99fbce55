/** The model families both engines build (architecture.ts states how they differ). */
export const MODEL_TYPES = ["llama", "qwen2", "qwen3"] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/** Which Hugging Face models each model_type covers, for error messages. */
const SUPPORTED = `"llama" (Llama 2/3.x, SmolLM2 and other LlamaForCausalLM models), "qwen2" (Qwen2, Qwen2.5), "qwen3" (dense Qwen3)`;

/**
 * Llama 3.1's RoPE frequency scaling (transformers' rope_type "llama3"): wavelengths longer than
 * original_max_position_embeddings / low_freq_factor are stretched by `factor`, shorter than
 * original_max_position_embeddings / high_freq_factor are kept, and those between are interpolated.
 */
export interface Llama3RopeScaling {
  rope_type: "llama3";
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/**
 * The model configuration, in Hugging Face config.json names so that a local folder of a supported family loads
 * as it is, and ours load in transformers (toHfConfig). validateConfig resolves every default, so each field is
 * always set.
 */
export interface ModelConfig {
  model_type: ModelType;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Per-head width: config.json's head_dim, or hidden_size / num_attention_heads (qwen3: 128) where it has none. */
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** null: plain RoPE (rope_type "default"). */
  rope_scaling: Llama3RopeScaling | null;
  /**
   * Hugging Face's attention_bias: llama and qwen3 put biases on the q, k, v and o projections when it is true.
   * Qwen2 has q, k and v biases (none on o_proj) whatever the key says, so it is always true there.
   */
  attention_bias: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  /** The first end-of-sequence id (config.json may list several: see eos_token_ids). */
  eos_token_id: number;
  /** Every end-of-sequence id of config.json's eos_token_id (a number or a list), the first being eos_token_id. */
  eos_token_ids: number[];
  pad_token_id: number;
}

/** Bumped when the checkpoint layout changes; checked on load. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/**
 * A small model that learns the synthetic task on a laptop CPU (about 0.8M parameters at vocab 512): plain Llama
 * unless overridden. Derived fields follow the overrides: head_dim is hidden_size / num_attention_heads (for
 * every family), attention_bias is true for qwen2, eos_token_ids is [eos_token_id].
 */
export function tinyConfig(vocabSize: number, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const c = {
    model_type: "llama" as ModelType,
    vocab_size: vocabSize,
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    ...overrides,
  };
  return {
    ...c,
    head_dim: overrides.head_dim ?? c.hidden_size / c.num_attention_heads,
    attention_bias: overrides.attention_bias ?? c.model_type === "qwen2",
    eos_token_ids: overrides.eos_token_ids ?? [c.eos_token_id],
  };
}

/**
 * The largest sizes a config may give, checked before anything is sized by them (parameterShapes makes an entry
 * per layer, the engines' RoPE tables and caches a row per position): a typo such as 1e9 layers must be refused
 * in a line, not after minutes and gigabytes. Each is well above every model of the families we build: Llama 3.1
 * 405B has 126 layers, hidden 16,384, intermediate 53,248 and 128 heads; Qwen2.5-72B intermediate 29,568; Gemma 3
 * has the largest vocabulary of the common families (262,144); Qwen2.5-1M the most positions (1,010,000).
 */
export const MODEL_LIMITS = {
  num_hidden_layers: 256,
  hidden_size: 32_768,
  intermediate_size: 131_072,
  num_attention_heads: 256,
  num_key_value_heads: 256,
  head_dim: 1_024,
  vocab_size: 1_048_576,
  max_position_embeddings: 1_048_576,
} as const;

/** Mixture-of-experts keys: a dense model has none of them (or zero). */
const MOE_KEYS = ["num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size", "n_shared_experts"];

/**
 * Validates a config (from a file or from settings); errors name the field. Families and options that the
 * engines do not build (another model_type, sliding-window attention, experts, a RoPE scaling other than
 * llama3, MLP biases, another activation) are refused rather than loaded as a different model.
 */
export function validateConfig(raw: unknown, source = "config.json"): ModelConfig {
  if (typeof raw !== "object" || raw === null) throw new Error(`${source}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  const int = (k: keyof typeof MODEL_LIMITS): number => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error(`${source}: "${k}" must be an integer ≥ 1, got ${JSON.stringify(v)}`);
    if (v > MODEL_LIMITS[k]) throw new Error(`${source}: ${k} ${v} is above the limit of ${MODEL_LIMITS[k].toLocaleString("en-US")}`);
    return v;
  };
  const num = (k: string, fallback: number): number => {
    const v = r[k] ?? fallback;
    if (typeof v !== "number" || !(v > 0)) throw new Error(`${source}: "${k}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const flag = (k: string, fallback: boolean): boolean => {
    const v = r[k] ?? fallback;
    if (typeof v !== "boolean") throw new Error(`${source}: "${k}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const tokenIds = (k: string): number[] | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    const list = Array.isArray(v) ? (v as unknown[]) : [v]; // some configs list several EOS ids
    if (list.length === 0 || !list.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0)) throw new Error(`${source}: "${k}" must be a token id or a list of them, got ${JSON.stringify(v)}`);
    return list as number[];
  };
  const unsupported = (what: string): Error => new Error(`${source}: ${what} is not supported (supported model_type: ${SUPPORTED}; plain or "llama3" RoPE, full attention, silu MLP without biases)`);

  // No default: transformers' AutoConfig refuses a config.json without one, and a folder of another family
  // read as Llama would load (or fail) as a model it is not.
  const modelType = r["model_type"];
  if (modelType === undefined || modelType === null) throw new Error(`${source}: no "model_type", which names the model's family (supported model_type: ${SUPPORTED})`);
  if (!MODEL_TYPES.includes(modelType as ModelType)) throw unsupported(`model_type ${JSON.stringify(modelType)}`);
  const type = modelType as ModelType;
  if (r["hidden_act"] !== undefined && r["hidden_act"] !== "silu") throw unsupported(`"hidden_act" ${JSON.stringify(r["hidden_act"])} (only "silu")`);
  if (flag("mlp_bias", false)) throw unsupported(`"mlp_bias": true`);
  if (flag("use_sliding_window", false)) throw unsupported(`"use_sliding_window": true (sliding-window attention)`);
  if (flag("use_mrope", false)) throw unsupported(`"use_mrope": true (multimodal RoPE)`);
  const layerTypes = r["layer_types"];
  if (layerTypes !== undefined && layerTypes !== null && (!Array.isArray(layerTypes) || layerTypes.some((t) => t !== "full_attention"))) throw unsupported(`"layer_types" other than "full_attention" (${JSON.stringify(layerTypes)})`);
  for (const k of MOE_KEYS) {
    const v = r[k];
    if (v !== undefined && v !== null && v !== 0) throw unsupported(`"${k}": ${JSON.stringify(v)} (mixture of experts)`);
  }
  const partial = r["partial_rotary_factor"];
  if (partial !== undefined && partial !== null && partial !== 1) throw unsupported(`"partial_rotary_factor": ${JSON.stringify(partial)}`);

  const heads = int("num_attention_heads");
  const hidden = int("hidden_size");
  let hd: number;
  if (r["head_dim"] !== undefined && r["head_dim"] !== null) hd = int("head_dim");
  else if (type === "qwen3") hd = 128; // Qwen3Config's default
  else if (hidden % heads !== 0) throw new Error(`${source}: hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and there is no "head_dim")`);
  else hd = hidden / heads;
  const { theta, scaling } = ropeSettings(r, source);
  const eos = tokenIds("eos_token_id") ?? [2];
  const c: ModelConfig = {
    model_type: type,
    vocab_size: int("vocab_size"),
    hidden_size: hidden,
    intermediate_size: int("intermediate_size"),
    num_hidden_layers: int("num_hidden_layers"),
    num_attention_heads: heads,
    num_key_value_heads: r["num_key_value_heads"] === undefined || r["num_key_value_heads"] === null ? heads : int("num_key_value_heads"),
    head_dim: hd,
    max_position_embeddings: int("max_position_embeddings"),
    rms_norm_eps: num("rms_norm_eps", 1e-6),
    rope_theta: theta,
    rope_scaling: scaling,
    attention_bias: type === "qwen2" ? true : flag("attention_bias", false),
    tie_word_embeddings: r["tie_word_embeddings"] === undefined ? false : Boolean(r["tie_word_embeddings"]),
    bos_token_id: tokenIds("bos_token_id")?.[0] ?? null,
    eos_token_id: eos[0]!,
    eos_token_ids: eos,
    pad_token_id: tokenIds("pad_token_id")?.[0] ?? tokenIds("eos_token_id")?.[0] ?? 0,
  };
  if (c.head_dim % 2 !== 0) throw new Error(`${source}: head dimension ${c.head_dim} must be even for rotary embeddings`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) throw new Error(`${source}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}`);
  return c;
}

/**
 * rope_theta and the scaling, from the older keys (rope_theta, rope_scaling) or newer transformers'
 * rope_parameters (one object holding rope_theta, rope_type and the scaling fields).
 */
function ropeSettings(r: Record<string, unknown>, source: string): { theta: number; scaling: Llama3RopeScaling | null } {
  const params = r["rope_parameters"];
  let field = "rope_scaling";
  let spec = r["rope_scaling"];
  let theta = r["rope_theta"];
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) throw new Error(`${source}: "rope_parameters" must be an object, got ${JSON.stringify(params)}`);
    const p = params as Record<string, unknown>;
    if (p["rope_type"] === undefined && p["type"] === undefined && p["rope_theta"] === undefined) {
      throw new Error(`${source}: "rope_parameters" ${JSON.stringify(params)} is not supported (one set of RoPE parameters with rope_type "default" or "llama3" is)`);
    }
    field = "rope_parameters";
    spec = p;
    theta = p["rope_theta"] ?? theta;
  }
  theta ??= 10000;
  if (typeof theta !== "number" || !(theta > 0)) throw new Error(`${source}: "rope_theta" must be a positive number, got ${JSON.stringify(theta)}`);
  if (spec === undefined || spec === null) return { theta, scaling: null };
  if (typeof spec !== "object" || Array.isArray(spec)) throw new Error(`${source}: "${field}" must be an object, got ${JSON.stringify(spec)}`);
  const s = spec as Record<string, unknown>;
  const type = s["rope_type"] ?? s["type"] ?? "default"; // "type" is the older spelling
  if (type === "default") return { theta, scaling: null };
  if (type !== "llama3") throw new Error(`${source}: ${field}.rope_type ${JSON.stringify(type)} is not supported (supported: "default", "llama3")`);
  const positive = (k: string): number => {
    const v = s[k];
    if (typeof v !== "number" || !(v > 0)) throw new Error(`${source}: ${field}.${k} must be a positive number for rope_type "llama3", got ${JSON.stringify(v)}`);
    return v;
  };
  const scaling: Llama3RopeScaling = {
    rope_type: "llama3",
    factor: positive("factor"),
    low_freq_factor: positive("low_freq_factor"),
    high_freq_factor: positive("high_freq_factor"),
    original_max_position_embeddings: positive("original_max_position_embeddings"),
  };
  if (!(scaling.high_freq_factor > scaling.low_freq_factor)) throw new Error(`${source}: ${field}.high_freq_factor (${scaling.high_freq_factor}) must exceed low_freq_factor (${scaling.low_freq_factor})`);
  return { theta, scaling };
}

const ARCHITECTURES: Record<ModelType, string> = { llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM" };

/**
 * The Hugging Face config.json of a model, with our format version: what transformers loads as the family's
 * *ForCausalLM and validateConfig reads back as the same config.
 */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const { eos_token_ids, ...rest } = c;
  const family: Record<string, unknown> =
    c.model_type === "llama"
      ? { attention_bias: c.attention_bias, mlp_bias: false }
      : c.model_type === "qwen2"
        ? { use_sliding_window: false }
        : { attention_bias: c.attention_bias, use_sliding_window: false };
  const out: Record<string, unknown> = {
    architectures: [ARCHITECTURES[c.model_type]],
    hidden_act: "silu",
    torch_dtype: "float32",
    ...rest,
    ...family,
    eos_token_id: eos_token_ids.length > 1 ? eos_token_ids.slice() : c.eos_token_id,
    selftrain_format_version: CHECKPOINT_FORMAT_VERSION,
  };
  if (c.model_type === "qwen2") delete out["attention_bias"];
  return out;
}
