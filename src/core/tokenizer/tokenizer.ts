import { readFileSync, writeFileSync, existsSync, statSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import type { TokenizerFiles } from "./tokenizerJson";

/** What the engine needs of a tokenizer; special tokens are never produced by encode. */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  /** Token ids of a text, without special tokens. */
  encode(text: string): number[];
  /** Text of token ids, special tokens left out. */
  decode(ids: readonly number[]): string;
  /** The tokenizer.json this tokenizer was loaded from, to be saved beside checkpoints. */
  readonly files: TokenizerFiles;
}

const BOS_GUESSES = ["<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>", "<|im_start|>"];
const EOS_GUESSES = ["</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<eos>", "<|im_end|>"];
const PAD_GUESSES = ["<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>"];

function tokenName(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  private readonly tk: Tokenizer;

  constructor(readonly files: TokenizerFiles, source: string) {
    // Decoding must give back exactly what was encoded: no clean-up of spaces before punctuation.
    const config = { ...files.config, clean_up_tokenization_spaces: false };
    this.tk = new Tokenizer(files.tokenizer, config);
    const vocab = this.tk.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const find = (configured: unknown, guesses: string[]): number | null => {
      const name = tokenName(configured);
      if (name !== null) {
        const id = this.tk.token_to_id(name);
        if (id !== undefined) return id;
      }
      for (const g of guesses) {
        const id = this.tk.token_to_id(g);
        if (id !== undefined) return id;
      }
      return null;
    };
    this.bosId = find(files.config["bos_token"], BOS_GUESSES);
    const eos = find(files.config["eos_token"], EOS_GUESSES);
    if (eos === null) throw new Error(`${source}: no end-of-sequence token (set "eos_token" in tokenizer_config.json)`);
    this.eosId = eos;
    this.padId = find(files.config["pad_token"], PAD_GUESSES) ?? eos;
  }

  encode(text: string): number[] {
    return this.tk.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    // The library refuses an empty list; a model that writes EOS first has written the empty string.
    if (ids.length === 0) return "";
    return this.tk.decode(ids as number[], { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }
}

/** A tokenizer from its Hugging Face files held in memory. */
export function tokenizerFromFiles(files: TokenizerFiles, source = "tokenizer"): TextTokenizer {
  return new HfTokenizer(files, source);
}

/**
 * Loads a local Hugging Face tokenizer: a `tokenizer.json` file, or a model folder holding one (its
 * `tokenizer_config.json`, when present, names the special tokens). Nothing is fetched from the network.
 */
export function loadTokenizer(path: string): TextTokenizer {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, "tokenizer.json") : path;
  if (!existsSync(file)) throw new Error(`${file}: no tokenizer.json there`);
  let tokenizer: Record<string, unknown>;
  try {
    tokenizer = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof tokenizer["model"] !== "object" || tokenizer["model"] === null) {
    throw new Error(`${file}: not a Hugging Face tokenizer.json (no "model" section)`);
  }
  const configFile = join(dirname(file), "tokenizer_config.json");
  const config = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>) : {};
  return tokenizerFromFiles({ tokenizer, config }, file);
}

/** Writes tokenizer.json and tokenizer_config.json into a folder. */
export function saveTokenizer(files: TokenizerFiles, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(files.tokenizer, null, 1) + "\n");
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(files.config, null, 2) + "\n");
}
