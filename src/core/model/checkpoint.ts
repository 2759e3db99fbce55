import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { validateConfig, toHfConfig, CHECKPOINT_FORMAT_VERSION, type ModelConfig } from "./config";
import type { HostWeights } from "./weights";
import { DEFAULT_MAX_SHARD_BYTES, loadFolderWeights, saveFolderWeights, writeFileAtomicSync, type WeightDtype } from "./modelFolder";
import { loadTokenizer, saveTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";
import { readJsonObject } from "../util/jsonFile";
import type { TorchDtype } from "../../shared/runTypes";

/**
 * A checkpoint is a Hugging Face model folder: config.json (with our format version), the weights
 * (model.safetensors, or shards with model.safetensors.index.json) and tokenizer.json. A model we create is
 * saved in float32 with a config.json of our own; a folder from elsewhere (Qwen, Llama, SmolLM) keeps its
 * family on save: its config.json, generation_config.json and weight dtype, so it loads where it came from.
 * Saved in another type (a run's float32 stage checkpoints of a bf16 model), its config.json says that type and
 * keeps the source's in `selftrain_source_dtype`, which sourceDtype reads to write the model back as it came.
 */
export interface Checkpoint {
  config: ModelConfig;
  weights: HostWeights;
  tokenizer: TextTokenizer;
  /** What the folder this checkpoint was loaded from held; saving writes it back. Absent for a model we created. */
  source?: CheckpointSource;
}

export interface CheckpointSource {
  /** config.json as read, every field kept (model_type, architectures, rope_scaling, torch_dtype, ...) */
  config: Record<string, unknown>;
  /** the type the weights were stored in; saving writes this type unless told otherwise */
  dtype: WeightDtype;
  /** generation_config.json as read, when the folder has one */
  generationConfig?: Record<string, unknown>;
}

export interface SaveOptions {
  /** weight type on disk; default the source's, or F32 for a model we created */
  dtype?: WeightDtype;
  /** bytes per weight file before sharding; default 2 GB for a model from a folder, one file for ours */
  maxShardBytes?: number;
  /** another folder's grouping of tensors into files (weightFilesOf), in place of maxShardBytes */
  layout?: ReadonlyMap<string, string>;
}

/** Our keys in a config.json: everything else belongs to the model's family and is written back unchanged. */
const OWN_KEY_PREFIX = "selftrain_";
/** The source's weight type (a torch_dtype name), kept by a checkpoint saved in another type. */
const SOURCE_DTYPE_KEY = `${OWN_KEY_PREFIX}source_dtype`;
const TORCH_DTYPE: Record<WeightDtype, TorchDtype> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

/** The name transformers gives a weight type (config.json's torch_dtype). */
export function torchDtypeName(dtype: WeightDtype): TorchDtype {
  return TORCH_DTYPE[dtype];
}

function weightDtypeOf(name: unknown): WeightDtype | undefined {
  return (Object.keys(TORCH_DTYPE) as WeightDtype[]).find((d) => TORCH_DTYPE[d] === name);
}

/**
 * The type a checkpoint's model came in, which what leaves a run is written in: the `selftrain_source_dtype` of a
 * checkpoint saved in another type, else the type it is stored in; float32 for a model we created (no source).
 */
export function sourceDtype(source: CheckpointSource | undefined): WeightDtype {
  if (!source) return "F32";
  return weightDtypeOf(source.config[SOURCE_DTYPE_KEY]) ?? source.dtype;
}

/**
 * Writes a checkpoint folder. Crash-safe: config.json (whose presence marks a complete checkpoint) is removed
 * first and written last, atomically; the weights, the index and generation_config.json come before it, and
 * weight files of an earlier save that the new layout does not name are removed before it.
 * `metadata` goes into every safetensors file, beside `format: "pt"` and our format version.
 */
export function saveCheckpoint(dir: string, c: Checkpoint, metadata: Record<string, string> = {}, options: SaveOptions = {}): void {
  const src = c.source;
  if (src) assertSameConfig(dir, c.config, src.config);
  const dtype = options.dtype ?? src?.dtype ?? "F32";
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, "config.json"), { force: true });
  saveFolderWeights(dir, c.config, c.weights, {
    dtype,
    maxShardBytes: options.maxShardBytes ?? (src ? DEFAULT_MAX_SHARD_BYTES : Infinity),
    ...(options.layout ? { layout: options.layout } : {}),
    metadata: { selftrain_format_version: String(CHECKPOINT_FORMAT_VERSION), ...metadata },
  });
  saveTokenizer(c.tokenizer.files, dir);
  const generation = join(dir, "generation_config.json");
  if (src?.generationConfig) writeFileAtomicSync(generation, JSON.stringify(src.generationConfig, null, 2) + "\n");
  else rmSync(generation, { force: true });
  writeFileAtomicSync(join(dir, "config.json"), JSON.stringify(hfConfig(c.config, src, dtype), null, 2) + "\n");
}

function hfConfig(config: ModelConfig, src: CheckpointSource | undefined, dtype: WeightDtype): Record<string, unknown> {
  if (!src) return toHfConfig(config);
  const out: Record<string, unknown> = { ...src.config };
  if (dtype !== src.dtype) {
    // Saved in another type on request: say so where transformers looks (newer versions write "dtype").
    for (const key of ["torch_dtype", "dtype"]) if (key in out) out[key] = TORCH_DTYPE[dtype];
  }
  // The source's type travels with a copy in another type, so the model can leave the run as it came; a copy in
  // the source's type needs no note, and its config.json is the source's again.
  const original = sourceDtype(src);
  if (dtype === original) delete out[SOURCE_DTYPE_KEY];
  else out[SOURCE_DTYPE_KEY] = TORCH_DTYPE[original];
  out[`${OWN_KEY_PREFIX}format_version`] = CHECKPOINT_FORMAT_VERSION;
  return out;
}

/** A config changed after loading would be silently lost under the source's config.json: refuse instead. */
function assertSameConfig(dir: string, config: ModelConfig, sourceConfig: Record<string, unknown>): void {
  const fromSource = validateConfig(sourceConfig, "source config.json") as unknown as Record<string, unknown>;
  const ours = config as unknown as Record<string, unknown>;
  const differing = [...new Set([...Object.keys(ours), ...Object.keys(fromSource)])].find((k) => !isDeepStrictEqual(ours[k], fromSource[k]));
  if (differing !== undefined) {
    throw new Error(`${dir}: cannot save: the model's ${differing} (${JSON.stringify(ours[differing])}) differs from its source config.json's (${JSON.stringify(fromSource[differing])}); drop \`source\` to save a config of our own`);
  }
}

/**
 * A folder's config.json as loading reads it, checked (our format version and keys, then validateConfig), with
 * its generation_config.json when it has one: what loadCheckpoint and `model inspect` both start from.
 */
export function readFolderConfig(dir: string): { raw: Record<string, unknown>; config: ModelConfig; generationConfig: Record<string, unknown> | undefined } {
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (not a model folder, or an unfinished checkpoint)`);
  const raw = readJsonObject(configFile);
  const version = raw[`${OWN_KEY_PREFIX}format_version`];
  if (typeof version === "number" && version > CHECKPOINT_FORMAT_VERSION) {
    throw new Error(`${configFile}: checkpoint format ${version} is newer than this version understands (${CHECKPOINT_FORMAT_VERSION})`);
  }
  const config = validateConfig(raw, configFile);
  if (SOURCE_DTYPE_KEY in raw && weightDtypeOf(raw[SOURCE_DTYPE_KEY]) === undefined) {
    throw new Error(`${configFile}: ${SOURCE_DTYPE_KEY} must be one of ${Object.values(TORCH_DTYPE).join(", ")}, not ${JSON.stringify(raw[SOURCE_DTYPE_KEY])}`);
  }
  const generationFile = join(dir, "generation_config.json");
  const generationConfig = existsSync(generationFile) ? readJsonObject(generationFile) : undefined;
  return { raw, config, generationConfig };
}

export function loadCheckpoint(dir: string): Checkpoint {
  const { raw, config, generationConfig } = readFolderConfig(dir);
  const tokenizer = loadTokenizer(dir); // before the weights: a broken tokenizer fails in milliseconds, not after gigabytes
  const { weights, dtype } = loadFolderWeights(dir, config);
  return { config, weights, tokenizer, source: { config: raw, dtype, ...(generationConfig ? { generationConfig } : {}) } };
}


/**
 * Every id that ends generation, de-duplicated, first the config's own: eos_token_id of config.json and of
 * generation_config.json, each a number or a list (Llama 3 instruct lists <|eot_id|> and <|eom_id|> there;
 * Qwen2.5 instruct lists <|im_end|> in generation_config.json only).
 */
export function stopTokenIds(c: Pick<Checkpoint, "config" | "source">): number[] {
  const ids = (v: unknown): number[] => (Array.isArray(v) ? v : [v]).filter((x): x is number => Number.isInteger(x) && (x as number) >= 0);
  return [...new Set([c.config.eos_token_id, ...ids(c.source?.config["eos_token_id"]), ...ids(c.source?.generationConfig?.["eos_token_id"])])];
}
