/**
 * The weight files of a Hugging Face model folder: one `model.safetensors`, or shards named by
 * `model.safetensors.index.json` (`weight_map`: tensor name -> shard file). Loading reads one tensor at a time
 * straight into its float32 array, so it peaks at about the float32 weights whatever the shard sizes; saving
 * writes the layout transformers' `save_pretrained` does, so a saved folder loads in transformers and vLLM.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { openSafetensors, fromFloat32, nonFiniteMessage, writeSafetensors, type SafetensorsDtype, type StoredTensor, type TensorInfo } from "./safetensors";
import { parameterShapes } from "./architecture";
import { checkWeights, type HostWeights } from "./weights";
import type { ModelConfig } from "./config";
import { fsyncDirSync } from "../store/atomic";
import { readJsonObject } from "../util/jsonFile";

export const SINGLE_WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";
/** Shard size limit on save, in bytes of tensor data (transformers' `max_shard_size` parses "2GB" as 2e9). */
export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;

/** The floating-point types a model's weights are stored in. */
export type WeightDtype = "F32" | "BF16" | "F16";

const BYTES: Record<WeightDtype, number> = { F32: 4, BF16: 2, F16: 2 };
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Tensors a folder may carry that are no parameters of ours: rotary tables, and the head of a tied model. */
function skipped(name: string, config: ModelConfig): boolean {
  return name.endsWith("rotary_emb.inv_freq") || (config.tie_word_embeddings && name === "lm_head.weight");
}

/** One weight file of a folder with its header, read and checked (no tensor data). */
export interface WeightFileHeader {
  /** full path */
  path: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Where a folder's tensors are: the index (null for one file), and each file's header. No tensor data is read. */
export interface WeightLayout {
  index: string | null;
  files: WeightFileHeader[];
  /** tensor name -> the file holding it (for a sharded folder, as the index says) */
  fileOf: Map<string, WeightFileHeader>;
}

/**
 * Reads the headers of a folder's weight files (no tensor data): `model.safetensors` when present (as
 * transformers prefers it), else the shards of `model.safetensors.index.json`. Errors name the file and tensor:
 * a missing shard, a tensor the index places in a shard that lacks it.
 */
export function readWeightLayout(dir: string): WeightLayout {
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  const index = join(dir, WEIGHTS_INDEX_FILE);
  if (existsSync(single)) {
    const file = headerOf(single);
    return { index: null, files: [file], fileOf: new Map([...file.tensors.keys()].map((n) => [n, file])) };
  }
  if (!existsSync(index)) throw new Error(`${dir}: no model.safetensors (nor ${WEIGHTS_INDEX_FILE} for a sharded model)`);
  const weightMap = readWeightMap(index);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of weightMap) byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  const files: WeightFileHeader[] = [];
  const fileOf = new Map<string, WeightFileHeader>();
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const holds = `${names[0]}${names.length > 1 ? ` and ${names.length - 1} more` : ""}`;
    if (!existsSync(path)) throw new Error(`${index}: shard ${shard} (holding ${holds}) does not exist`);
    const file = headerOf(path);
    for (const name of names) {
      if (!file.tensors.has(name)) throw new Error(`${path}: no tensor ${name}, which ${WEIGHTS_INDEX_FILE} places in this file`);
      fileOf.set(name, file);
    }
    files.push(file);
  }
  return { index, files, fileOf };
}

/** Tensor name -> the weight file (a name in the folder) holding it: a folder's layout, for SaveWeightsOptions.layout. */
export function weightFilesOf(dir: string): Map<string, string> {
  return new Map([...readWeightLayout(dir).fileOf].map(([name, file]) => [name, basename(file.path)]));
}

function headerOf(path: string): WeightFileHeader {
  const r = openSafetensors(path);
  r.close();
  return { path, tensors: r.tensors, metadata: r.metadata };
}

function readWeightMap(index: string): Map<string, string> {
  const map = readJsonObject(index)["weight_map"];
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new Error(`${index}: no "weight_map" object`);
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    // A shard is a file beside the index: a path elsewhere would read (or, on save, delete) outside the folder.
    if (typeof shard !== "string" || shard === "" || basename(shard) !== shard || shard === "." || shard === "..") {
      throw new Error(`${index}: weight_map[${JSON.stringify(name)}] = ${JSON.stringify(shard)} is not a file name in this folder`);
    }
    out.set(name, shard);
  }
  return out;
}

export interface LoadedWeights {
  weights: HostWeights;
  /** the type most of the weights are stored in (F64 counts as F32): what saving writes back by default */
  dtype: WeightDtype;
  layout: WeightLayout;
}

/**
 * Loads a folder's weights as float32, checked against the config before any tensor data is read: missing or
 * wrong-shaped parameters fail fast with the file and tensor named. Tensors are read one at a time into their
 * float32 arrays (2-byte types widen in place), so the peak is the float32 weights plus headers. Rotary tables
 * are skipped; a tied model's `lm_head.weight`, if present, is not read. Weights come in parameter order.
 */
export function loadFolderWeights(dir: string, config: ModelConfig): LoadedWeights {
  const layout = readWeightLayout(dir);
  checkWeightHeaders(dir, config, layout);
  const wanted = [...layout.fileOf].filter(([name]) => !skipped(name, config));
  const shapes: HostWeights = new Map(wanted.map(([name, file]) => [name, { shape: file.tensors.get(name)!.shape, data: new Float32Array(0) }]));
  const elements: Partial<Record<SafetensorsDtype, number>> = {};
  const loaded = new Map<string, Float32Array>();
  for (const file of layout.files) {
    const names = wanted.filter(([, f]) => f === file).map(([n]) => n);
    if (names.length === 0) continue;
    names.sort((a, b) => file.tensors.get(a)!.begin - file.tensors.get(b)!.begin); // sequential reads
    const reader = openSafetensors(file.path);
    try {
      for (const name of names) {
        // Every value is converted here anyway, so a NaN or infinity is refused by name at no extra read.
        const data = reader.readFloat32(name, { finite: true });
        const dtype = file.tensors.get(name)!.dtype;
        elements[dtype] = (elements[dtype] ?? 0) + data.length;
        loaded.set(name, data);
      }
    } finally {
      reader.close();
    }
  }
  const weights: HostWeights = new Map();
  for (const name of orderedNames(config, shapes)) weights.set(name, { shape: shapes.get(name)!.shape, data: loaded.get(name)! });
  return { weights, dtype: majorityDtype(elements), layout };
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(["F32", "F16", "BF16", "F64"]);
const LAYER_TENSOR = /^model\.layers\.(\d+)\./;

/**
 * Checks a folder's weight headers against its config, reading no tensor data: first the sizes config.json gives
 * against what the weights hold (before parameterShapes makes an entry per configured layer), then every parameter
 * present with its shape, nothing else but rotary tables and a tied head, each of a floating-point type. Loading
 * runs it before reading any weights and `model inspect` runs it as well, so inspect refuses what loading would.
 * Errors name config.json and the key, or the weight file and the tensor.
 */
export function checkWeightHeaders(dir: string, config: ModelConfig, layout: WeightLayout): void {
  checkSizes(join(dir, "config.json"), config, layout);
  const wanted = [...layout.fileOf].filter(([name]) => !skipped(name, config));
  const shapes: HostWeights = new Map(wanted.map(([name, file]) => [name, { shape: file.tensors.get(name)!.shape, data: new Float32Array(0) }]));
  checkAgainstConfig(config, shapes, layout);
  for (const [name, file] of wanted) {
    const dtype = file.tensors.get(name)!.dtype;
    if (!FLOAT_DTYPES.has(dtype)) throw new Error(`${file.path}: tensor ${name} is ${dtype}, not a floating-point type (F32, BF16, F16, F64)`);
  }
}

/**
 * Reads every value loading would read and refuses the first NaN or infinity, as loading does (same message),
 * without converting or keeping anything: one read of the weight files, in pieces of a few megabytes. For `model
 * inspect`, which otherwise reads headers only. Returns the bytes read.
 */
export function checkWeightValues(config: ModelConfig, layout: WeightLayout): number {
  let bytes = 0;
  for (const file of layout.files) {
    const names = [...layout.fileOf].filter(([name, f]) => f === file && !skipped(name, config)).map(([name]) => name);
    if (names.length === 0) continue;
    names.sort((a, b) => file.tensors.get(a)!.begin - file.tensors.get(b)!.begin); // sequential reads
    const reader = openSafetensors(file.path);
    try {
      for (const name of names) {
        const at = reader.firstNonFinite(name);
        if (at !== null) throw new Error(nonFiniteMessage(file.path, name, at));
        bytes += file.tensors.get(name)!.end - file.tensors.get(name)!.begin;
      }
    } finally {
      reader.close();
    }
  }
  return bytes;
}

/**
 * The config's layer count, vocabulary, hidden and intermediate sizes against the tensors present, so that a wrong
 * size is reported as the config.json key it is rather than as thousands of missing or misshapen tensors.
 */
function checkSizes(configFile: string, config: ModelConfig, layout: WeightLayout): void {
  let top = -1;
  for (const name of layout.fileOf.keys()) {
    const m = LAYER_TENSOR.exec(name);
    if (m) top = Math.max(top, Number(m[1]));
  }
  if (config.num_hidden_layers !== top + 1) {
    throw new Error(`${configFile}: num_hidden_layers is ${config.num_hidden_layers}, but the weights hold ${top < 0 ? "no layers (no model.layers.N tensors)" : `layers 0–${top}`}`);
  }
  const matrix = (name: string): number[] | null => {
    const shape = layout.fileOf.get(name)?.tensors.get(name)?.shape;
    return shape && shape.length === 2 ? shape : null;
  };
  const embed = matrix("model.embed_tokens.weight");
  if (embed && embed[0] !== config.vocab_size) throw new Error(`${configFile}: vocab_size is ${config.vocab_size}, but model.embed_tokens.weight holds ${embed[0]} rows`);
  if (embed && embed[1] !== config.hidden_size) throw new Error(`${configFile}: hidden_size is ${config.hidden_size}, but model.embed_tokens.weight holds rows of ${embed[1]}`);
  const up = matrix("model.layers.0.mlp.up_proj.weight");
  if (up && up[0] !== config.intermediate_size) throw new Error(`${configFile}: intermediate_size is ${config.intermediate_size}, but model.layers.0.mlp.up_proj.weight holds ${up[0]} rows`);
}

/** checkWeights on the headers' shapes; a wrong shape in a sharded folder also names the shard holding it. */
function checkAgainstConfig(config: ModelConfig, shapes: HostWeights, layout: WeightLayout): void {
  try {
    checkWeights(config, shapes, layout.index ?? layout.files[0]!.path);
  } catch (e) {
    if (!(e instanceof Error) || layout.index === null) throw e;
    const name = [...shapes.keys()].find((n) => e.message.includes(` ${n} `));
    const file = name === undefined ? undefined : layout.fileOf.get(name);
    throw file ? new Error(`${e.message} (stored in ${basename(file.path)})`) : e;
  }
}

function majorityDtype(elements: Partial<Record<SafetensorsDtype, number>>): WeightDtype {
  const count = (d: SafetensorsDtype): number => elements[d] ?? 0;
  const f32 = count("F32") + count("F64");
  if (count("BF16") > Math.max(f32, count("F16"))) return "BF16";
  if (count("F16") > f32) return "F16";
  return "F32";
}

/** The config's parameters in model order (what transformers' state dict lists), then any others. */
function orderedNames(config: ModelConfig, weights: HostWeights): string[] {
  const known = [...parameterShapes(config).keys()].filter((n) => weights.has(n));
  const seen = new Set(known);
  return [...known, ...[...weights.keys()].filter((n) => !seen.has(n))];
}

export interface SaveWeightsOptions {
  dtype: WeightDtype;
  /** bytes of tensor data per shard; more weights than this are sharded with an index */
  maxShardBytes: number;
  /** safetensors metadata of every file (`format: "pt"` is always set, as transformers expects) */
  metadata?: Record<string, string>;
  /**
   * Another folder's layout (weightFilesOf): its grouping of tensors into files, in its files' order, instead of
   * sharding by maxShardBytes, so that a model leaves in the files it came in. Names it holds that are not
   * written (a tied head, rotary tables) are passed over; a tensor it does not name is an error.
   */
  layout?: ReadonlyMap<string, string>;
}

/**
 * Writes weights as transformers does: one `model.safetensors`, or `model-0000i-of-0000n.safetensors` shards
 * (filled in parameter order, a tensor over the limit alone in its shard) and then the index. Each file is
 * written atomically; afterwards weight files of an earlier save that the new layout does not name are removed,
 * so a re-save with different sharding leaves nothing stale to be read. A tied model's lm_head is not written.
 * Converts one shard at a time, so saving adds at most one shard's bytes to memory. Returns the files written.
 */
export function saveFolderWeights(dir: string, config: ModelConfig, weights: HostWeights, options: SaveWeightsOptions): string[] {
  const names = orderedNames(config, weights).filter((n) => !skipped(n, config));
  const size = (n: string): number => weights.get(n)!.data.length * BYTES[options.dtype];
  const total = names.reduce((s, n) => s + size(n), 0);
  const shards = options.layout ? shardsLike(names, options.layout, dir) : shardsBySize(names, size, options.maxShardBytes);
  const fileNames = shards.length === 1
    ? [SINGLE_WEIGHTS_FILE]
    : shards.map((_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`);
  const previous = previousWeightFiles(dir);
  const metadata = { ...options.metadata, format: "pt" };
  shards.forEach((shard, i) => {
    const tensors = new Map<string, StoredTensor>();
    for (const name of shard) {
      const w = weights.get(name)!;
      tensors.set(name, fromFloat32(w.data, w.shape, options.dtype));
    }
    writeSafetensors(join(dir, fileNames[i]!), tensors, metadata);
  });
  if (fileNames.length > 1) {
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => shard.forEach((name) => (weightMap[name] = fileNames[i]!)));
    writeFileAtomicSync(join(dir, WEIGHTS_INDEX_FILE), indexJson(total, weightMap));
  }
  const keep = new Set(fileNames);
  if (fileNames.length > 1) keep.add(WEIGHTS_INDEX_FILE);
  for (const f of previous) if (!keep.has(f)) rmSync(join(dir, f), { force: true });
  return [...keep];
}

/** Filled in parameter order, a new shard when the next tensor would pass the limit (a tensor over it alone). */
function shardsBySize(names: string[], size: (name: string) => number, maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [], currentBytes = 0;
  for (const name of names) {
    if (current.length > 0 && currentBytes + size(name) > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += size(name);
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** The tensors grouped as `layout` groups them, its files in name order (model-00001-of-… first). */
function shardsLike(names: string[], layout: ReadonlyMap<string, string>, dir: string): string[][] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const file = layout.get(name);
    if (file === undefined) throw new Error(`${dir}: cannot save in the layout given: it places no file for tensor ${name}`);
    const group = groups.get(file);
    if (group) group.push(name);
    else groups.set(file, [name]);
  }
  const files = [...groups.keys()].sort();
  return files.length === 0 ? [[]] : files.map((f) => groups.get(f)!);
}

/**
 * The index as huggingface_hub writes it: keys sorted, two-space indent. Built by hand because a JS object
 * would move integer-like tensor names ahead of the rest.
 */
function indexJson(totalSize: number, weightMap: Record<string, string>): string {
  const entries = Object.keys(weightMap).sort().map((n) => `    ${JSON.stringify(n)}: ${JSON.stringify(weightMap[n])}`);
  return `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${entries.join(",\n")}\n  }\n}\n`;
}

/** Weight files an earlier save may have left: the single file, the index and what it names, shard-named files. */
function previousWeightFiles(dir: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir)) {
    if (f === SINGLE_WEIGHTS_FILE || f === WEIGHTS_INDEX_FILE || SHARD_NAME.test(f)) out.add(f);
  }
  if (out.has(WEIGHTS_INDEX_FILE)) {
    try {
      for (const shard of readWeightMap(join(dir, WEIGHTS_INDEX_FILE)).values()) {
        if (shard.endsWith(".safetensors") && existsSync(join(dir, shard))) out.add(shard);
      }
    } catch { /* an unreadable old index names nothing we can trust; it is replaced or removed all the same */ }
  }
  return out;
}

/** Replaces a small file atomically (temporary sibling, fsync, rename, fsync of the folder), synchronously. */
export function writeFileAtomicSync(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    const bytes = Buffer.from(text, "utf8");
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDirSync(dirname(path));
}
