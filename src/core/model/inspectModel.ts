import { existsSync, statSync } from "node:fs";
import { readJsonObject } from "../util/jsonFile";
import { join } from "node:path";
import { validateConfig, type ModelConfig } from "./config";
import { headDim, parameterCount, parameterShapes } from "./architecture";
import { readWeightLayout, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./modelFolder";

/**
 * What a model folder holds, read from its small files and the safetensors headers only (no weights): what
 * `selftrain model inspect` and "Use a model folder…" show before anything is trained or written, and the
 * one-line reason when the folder cannot be used.
 */
export interface ModelInspection {
  dir: string;
  /** The config's model_type, e.g. "qwen3". */
  family: string;
  config: ModelConfig;
  parameters: number;
  /** Stored dtypes with their tensor counts, e.g. { BF16: 311 }. */
  dtypes: Record<string, number>;
  /** Weight files: 1 for model.safetensors, else the index's shards. */
  shards: number;
  bytes: number;
  vocabulary: number;
  tied: boolean;
  /** "θ 1,000,000", "θ 500,000, llama3 scaling ×32 from 8,192". */
  rope: string;
  chatTemplate: boolean;
  tokenizer: boolean;
}

/** A folder that cannot be used, with the one-line reason. */
export class ModelFolderError extends Error {}

const SKIPPED = /rotary_emb\.inv_freq$/;

function readJson(file: string): Record<string, unknown> {
  try {
    return readJsonObject(file);
  } catch (e) {
    throw new ModelFolderError(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Reads a Hugging Face model folder's description and checks it can be used: a supported family, every tensor the
 * architecture needs present with its shape, a tokenizer. Throws ModelFolderError with one line otherwise.
 */
export function inspectModelFolder(dir: string): ModelInspection {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFolderError(`${dir}: not a folder`);
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new ModelFolderError(`${dir}: no config.json (not a Hugging Face model folder)`);
  const raw = readJson(configFile);
  let config: ModelConfig;
  try {
    config = validateConfig(raw, configFile);
  } catch (e) {
    throw new ModelFolderError(e instanceof Error ? e.message : String(e));
  }
  // The weight files' headers: one model.safetensors, or the shards an index names (no tensor data is read).
  if (!existsSync(join(dir, SINGLE_WEIGHTS_FILE)) && !existsSync(join(dir, WEIGHTS_INDEX_FILE)) && existsSync(join(dir, "pytorch_model.bin"))) {
    throw new ModelFolderError(`${dir}: only pytorch_model.bin, which is not read (pickle); convert it to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))`);
  }
  let layout;
  try {
    layout = readWeightLayout(dir);
  } catch (e) {
    throw new ModelFolderError(e instanceof Error ? e.message : String(e));
  }
  const tensors = new Map<string, { dtype: string; shape: number[]; file: string }>();
  for (const [name, f] of layout.fileOf) tensors.set(name, { ...f.tensors.get(name)!, file: f.path });
  const shards = layout.files.length;
  const bytes = layout.files.reduce((a, f) => a + statSync(f.path).size, 0);
  const dtypes: Record<string, number> = {};
  for (const [name, t] of tensors) if (!SKIPPED.test(name)) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  for (const [name, shape] of parameterShapes(config)) {
    const t = tensors.get(name);
    if (!t) throw new ModelFolderError(`${dir}: tensor ${name} is missing from the weight files`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFolderError(`${t.file}: tensor ${name} has shape [${t.shape.join(", ")}], the config needs [${shape.join(", ")}]`);
    }
  }
  const tokConfigFile = join(dir, "tokenizer_config.json");
  const tokConfig = existsSync(tokConfigFile) ? readJson(tokConfigFile) : {};
  const hasTokenizer = existsSync(join(dir, "tokenizer.json"));
  if (!hasTokenizer) throw new ModelFolderError(`${dir}: no tokenizer.json (the fast tokenizer file; transformers writes it with tokenizer.save_pretrained)`);
  const rs = (raw["rope_scaling"] ?? (raw["rope_parameters"] as Record<string, unknown> | undefined)) as Record<string, unknown> | null | undefined;
  const theta = Number(raw["rope_theta"] ?? (raw["rope_parameters"] as Record<string, unknown> | undefined)?.["rope_theta"] ?? config.rope_theta);
  const scaling = rs && typeof rs === "object" && (rs["rope_type"] ?? rs["type"]) && (rs["rope_type"] ?? rs["type"]) !== "default"
    ? `, ${String(rs["rope_type"] ?? rs["type"])} scaling ×${String(rs["factor"])} from ${Number(rs["original_max_position_embeddings"]).toLocaleString("en-US")}`
    : "";
  return {
    dir,
    family: typeof raw["model_type"] === "string" ? raw["model_type"] : "llama",
    config,
    parameters: parameterCount(config),
    dtypes,
    shards,
    bytes,
    vocabulary: config.vocab_size,
    tied: config.tie_word_embeddings,
    rope: `θ ${theta.toLocaleString("en-US")}, head dim ${headDim(config)}${scaling}`,
    chatTemplate: typeof tokConfig["chat_template"] === "string" || Array.isArray(tokConfig["chat_template"]) || existsSync(join(dir, "chat_template.jinja")),
    tokenizer: hasTokenizer,
  };
}

/** "135M", "1.5B". */
export function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${Math.round(n / 1e6)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}K` : String(n);
}

export function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GB` : n >= 1 << 20 ? `${Math.round(n / (1 << 20))} MB` : `${Math.round(n / 1024)} KB`;
}

/** The summary's lines, as the CLI prints them and the extension shows them. */
export function describeInspection(m: ModelInspection): string[] {
  const dtypes = Object.entries(m.dtypes).map(([d, n]) => (Object.keys(m.dtypes).length > 1 ? `${d} (${n} tensors)` : d)).join(", ");
  return [
    `family      ${m.family}`,
    `parameters  ${formatCount(m.parameters)} (${m.parameters.toLocaleString("en-US")})`,
    `weights     ${dtypes}, ${m.shards === 1 ? "one file" : `${m.shards} shards`}, ${formatBytes(m.bytes)}`,
    `vocabulary  ${m.vocabulary.toLocaleString("en-US")}${m.tied ? ", embeddings tied to the output" : ", separate output head"}`,
    `layers      ${m.config.num_hidden_layers} × hidden ${m.config.hidden_size}, ${m.config.num_attention_heads} heads / ${m.config.num_key_value_heads} key-value heads`,
    `RoPE        ${m.rope}`,
    `chat        ${m.chatTemplate ? "has a chat template (prompts go through it unless model.promptFormat is \"plain\")" : "no chat template: plain prompts"}`,
  ];
}
