import { existsSync, statSync } from "node:fs";
import { readJsonObject } from "../util/jsonFile";
import { join } from "node:path";
import type { ModelConfig } from "./config";
import { readFolderConfig } from "./checkpoint";
import { headDim, parameterCount } from "./architecture";
import { checkWeightHeaders, checkWeightValues, readWeightLayout, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./modelFolder";
import { loadTokenizer } from "../tokenizer/tokenizer";
import { promptFormatFor, type PromptFormatSetting } from "./promptFormat";

/**
 * What a model folder holds, read from its small files and the safetensors headers (the weights' values only when
 * asked: InspectOptions.values): what `selftrain model inspect` and "Use a model folder…" show before anything is
 * trained or written, and the one-line reason when the folder cannot be used.
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
  /** Whether every weight value was read and found finite (InspectOptions.values), with the bytes and time it took. */
  values: { bytes: number; ms: number } | null;
}

export interface InspectOptions {
  /**
   * Also read every weight value and refuse a NaN or infinity, as loading does: one read of the weight files
   * (about 0.5 s for a 135M model's 270 MB in bf16 from the page cache; longer from a cold disk). Without it only
   * the small files and the safetensors headers are read, for callers that must answer at once (the editor).
   */
  values?: boolean;
  /**
   * The workspace's model.promptFormat: "plain" never renders the chat template, so it is not checked. Otherwise
   * the template must render a sample question within the template limits, with the shape training needs.
   */
  promptFormat?: PromptFormatSetting;
}

/** A folder that cannot be used, with the one-line reason (a parser's multi-line message is joined into one). */
export class ModelFolderError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, " "));
  }
}

const SKIPPED = /rotary_emb\.inv_freq$/;

function readJson(file: string): Record<string, unknown> {
  try {
    return readJsonObject(file);
  } catch (e) {
    throw new ModelFolderError(e instanceof Error ? e.message : String(e));
  }
}

/** Runs a check, reporting what it throws as a ModelFolderError with the same line. */
function folderCheck<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw e instanceof ModelFolderError ? e : new ModelFolderError(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Reads a Hugging Face model folder's description and checks it can be used, with the checks loading makes
 * (loadCheckpoint): a supported family and sizes within limits, the weights' headers against the config (every
 * parameter present with its shape, nothing else, floating-point types), a tokenizer that loads with its chat
 * template, and with options.values every weight finite. Throws ModelFolderError with one line otherwise.
 */
export function inspectModelFolder(dir: string, options: InspectOptions = {}): ModelInspection {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFolderError(`${dir}: not a folder`);
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new ModelFolderError(`${dir}: no config.json (not a Hugging Face model folder)`);
  const { raw, config } = folderCheck(() => readFolderConfig(dir));
  // The weight files' headers: one model.safetensors, or the shards an index names (no tensor data is read).
  if (!existsSync(join(dir, SINGLE_WEIGHTS_FILE)) && !existsSync(join(dir, WEIGHTS_INDEX_FILE)) && existsSync(join(dir, "pytorch_model.bin"))) {
    throw new ModelFolderError(`${dir}: only pytorch_model.bin, which is not read (pickle); convert it to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))`);
  }
  const layout = folderCheck(() => readWeightLayout(dir));
  folderCheck(() => checkWeightHeaders(dir, config, layout));
  const shards = layout.files.length;
  const bytes = layout.files.reduce((a, f) => a + statSync(f.path).size, 0);
  const dtypes: Record<string, number> = {};
  for (const [name, file] of layout.fileOf) {
    if (!SKIPPED.test(name)) {
      const dtype = file.tensors.get(name)!.dtype;
      dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
    }
  }
  const tokConfigFile = join(dir, "tokenizer_config.json");
  const tokConfig = existsSync(tokConfigFile) ? readJson(tokConfigFile) : {};
  const hasTokenizer = existsSync(join(dir, "tokenizer.json"));
  if (!hasTokenizer) throw new ModelFolderError(`${dir}: no tokenizer.json (the fast tokenizer file; transformers writes it with tokenizer.save_pretrained)`);
  // The tokenizer as loading builds it: an unreadable tokenizer.json or a chat template that is not one fails here.
  const tokenizer = folderCheck(() => loadTokenizer(dir));
  // The chat template is code from the internet: it renders a sample question here, with the limits every render
  // has (chatTemplate.ts), as the round's prompt format will, so one that hangs, explodes or cannot be trained on
  // is refused now, naming its file, and not in the middle of a round.
  if (tokenizer.chatTemplate !== null && options.promptFormat !== "plain") folderCheck(() => promptFormatFor(tokenizer, "chat", dir));
  let values: ModelInspection["values"] = null;
  if (options.values) {
    const start = performance.now();
    const read = folderCheck(() => checkWeightValues(config, layout));
    values = { bytes: read, ms: performance.now() - start };
  }
  const rs = (raw["rope_scaling"] ?? (raw["rope_parameters"] as Record<string, unknown> | undefined)) as Record<string, unknown> | null | undefined;
  const theta = Number(raw["rope_theta"] ?? (raw["rope_parameters"] as Record<string, unknown> | undefined)?.["rope_theta"] ?? config.rope_theta);
  const scaling = rs && typeof rs === "object" && (rs["rope_type"] ?? rs["type"]) && (rs["rope_type"] ?? rs["type"]) !== "default"
    ? `, ${String(rs["rope_type"] ?? rs["type"])} scaling ×${String(rs["factor"])} from ${Number(rs["original_max_position_embeddings"]).toLocaleString("en-US")}`
    : "";
  return {
    dir,
    family: config.model_type,
    config,
    parameters: parameterCount(config),
    dtypes,
    shards,
    bytes,
    vocabulary: config.vocab_size,
    tied: config.tie_word_embeddings,
    rope: `θ ${theta.toLocaleString("en-US")}, head dim ${headDim(config)}${scaling}`,
    chatTemplate: tokenizer.chatTemplate !== null,
    tokenizer: hasTokenizer,
    values,
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
    ...(m.values ? [`values      all finite (${formatBytes(m.values.bytes)} read in ${(m.values.ms / 1000).toFixed(1)} s)`] : []),
  ];
}
