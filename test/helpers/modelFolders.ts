// Tiny Hugging Face model folders written as we save models, and the ways a careless or hostile folder spoils
// one: for the tests, and for scripts/walks/hostile.ts, which runs the CLI on each.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint } from "../../src/core/model/checkpoint";
import { tinyConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { fromFloat32, readSafetensors, writeSafetensors, type StoredTensor } from "../../src/core/model/safetensors";
import { trainBpe } from "../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../src/core/tokenizer/tokenizer";

export const tinyTokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7", "Tom buys 12 pens for 2 dollars each."], { vocabSize: 280 }));
export const tinyModelConfig = tinyConfig(tinyTokenizer.vocabSize, { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64 });

/** A two-layer Llama folder of a few thousand parameters (bf16 unless told), with its BPE tokenizer. */
export function tinyModelFolder(dir: string, dtype: "F32" | "BF16" | "F16" = "BF16"): string {
  saveCheckpoint(dir, { config: tinyModelConfig, weights: initWeights(tinyModelConfig, 5, 0.3), tokenizer: tinyTokenizer }, {}, { dtype });
  return dir;
}

/** Rewrites a JSON object file (config.json, tokenizer_config.json) through `change`. */
export function editJson(file: string, change: (o: Record<string, unknown>) => void): void {
  const o = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  change(o);
  writeFileSync(file, JSON.stringify(o, null, 2));
}

/** Rewrites (or with null removes) one tensor of a single-file folder; a name it lacks is added. */
export function editTensor(dir: string, name: string, change: (t: StoredTensor | undefined) => StoredTensor | null): void {
  const file = join(dir, "model.safetensors");
  const st = readSafetensors(file);
  const tensors = new Map(st.tensors);
  const t = change(tensors.get(name));
  if (t === null) tensors.delete(name);
  else tensors.set(name, t);
  writeSafetensors(file, tensors, st.metadata);
}

export const NAN_TENSOR = "model.layers.1.mlp.up_proj.weight";

/** A NaN at index 123 of NAN_TENSOR (bf16): headers stay valid, only reading the values finds it. */
export function withNaN(dir: string): void {
  const c = tinyModelConfig;
  const values = new Float32Array(c.intermediate_size * c.hidden_size).fill(0.25);
  values[123] = NaN;
  editTensor(dir, NAN_TENSOR, () => fromFloat32(values, [c.intermediate_size, c.hidden_size], "BF16"));
}

/** NAN_TENSOR stored as I8, an integer type no loader converts. */
export function withI8(dir: string): void {
  editTensor(dir, NAN_TENSOR, (w) => ({ dtype: "I8", shape: w!.shape, bytes: new Uint8Array(w!.shape.reduce((a, b) => a * b, 1)) }));
}

/** A tensor that no parameter of the config names. */
export function withExtraTensor(dir: string): void {
  editTensor(dir, "model.layers.0.mlp.extra.weight", () => fromFloat32(new Float32Array(4), [4]));
}
