import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, writeSafetensors, toFloat32, fromFloat32, type StoredTensor } from "./safetensors";
import { validateConfig, toHfConfig, CHECKPOINT_FORMAT_VERSION, type ModelConfig } from "./config";
import { checkWeights, type HostWeights } from "./weights";
import { loadTokenizer, saveTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";

/**
 * A checkpoint is a Hugging Face model folder: config.json (with our format version), model.safetensors
 * (float32) and tokenizer.json. A local Llama-architecture folder from elsewhere loads the same way.
 */
export interface Checkpoint {
  config: ModelConfig;
  weights: HostWeights;
  tokenizer: TextTokenizer;
}

export function saveCheckpoint(dir: string, c: Checkpoint, metadata: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, StoredTensor>();
  for (const [name, w] of c.weights) tensors.set(name, fromFloat32(w.data, w.shape, "F32"));
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt", selftrain_format_version: String(CHECKPOINT_FORMAT_VERSION), ...metadata });
  saveTokenizer(c.tokenizer.files, dir);
  // config.json last and atomically: its presence marks a complete checkpoint.
  const tmp = join(dir, "config.json.tmp");
  writeFileSync(tmp, JSON.stringify(toHfConfig(c.config), null, 2) + "\n");
  renameSync(tmp, join(dir, "config.json"));
}

export function loadCheckpoint(dir: string): Checkpoint {
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (not a model folder, or an unfinished checkpoint)`);
  const raw = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
  const version = raw["selftrain_format_version"];
  if (typeof version === "number" && version > CHECKPOINT_FORMAT_VERSION) {
    throw new Error(`${configFile}: checkpoint format ${version} is newer than this version understands (${CHECKPOINT_FORMAT_VERSION})`);
  }
  const config = validateConfig(raw, configFile);
  const file = join(dir, "model.safetensors");
  if (!existsSync(file)) throw new Error(`${dir}: no model.safetensors`);
  const stored = readSafetensors(file);
  const weights: HostWeights = new Map();
  for (const [name, t] of stored.tensors) {
    if (name.endsWith("rotary_emb.inv_freq")) continue;
    weights.set(name, { shape: t.shape, data: toFloat32(t) });
  }
  // Tied models saved by transformers may still carry lm_head.weight; it equals the embeddings.
  if (config.tie_word_embeddings) weights.delete("lm_head.weight");
  checkWeights(config, weights, file);
  return { config, weights, tokenizer: loadTokenizer(dir) };
}
