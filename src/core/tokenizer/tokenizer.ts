import { readFileSync, writeFileSync, existsSync, statSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { DigitsPreTokenizer, Tokenizer } from "@huggingface/tokenizers";
import type { TokenizerFiles } from "./tokenizerJson";
import { readJsonObject } from "../util/jsonFile";

/** What the engine needs of a tokenizer. */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  /**
   * Token ids of a text, no BOS/EOS added. Text spelling a special token (`<|im_end|>`) becomes that token, as
   * in Hugging Face tokenizers: the chat format relies on it; GSM8K text holds none.
   */
  encode(text: string): number[];
  /** Text of token ids, special tokens left out. */
  decode(ids: readonly number[]): string;
  /** The id of a token written as text (`<|eot_id|>`), or null when the vocabulary lacks it. */
  tokenId(token: string): number | null;
  /** Whether an id is a special token (an added token marked special: BOS, EOS, chat markers). */
  isSpecial(id: number): boolean;
  /** The special tokens as tokenizer_config.json names them, for chat templates (`bos_token`, `eos_token`, ...). */
  readonly specialTokenNames: Readonly<Record<string, string>>;
  /** The model's chat template (Jinja), or null for a model without one (a base model, or ours). */
  readonly chatTemplate: string | null;
  /**
   * The file the chat template was read from (`tokenizer_config.json`, `chat_template.jinja`,
   * `chat_template.json`), so an error about the template names the file to fix; null without a template.
   */
  readonly chatTemplateFile: ChatTemplateFile | null;
  /** The tokenizer.json this tokenizer was loaded from, to be saved beside checkpoints. */
  readonly files: TokenizerFiles;
}

// Guesses where tokenizer_config.json names no token (a bare tokenizer.json). <|im_start|> opens a chat turn and
// is no BOS: a Qwen model has none.
const BOS_GUESSES = ["<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"];
const EOS_GUESSES = ["</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<eos>", "<|im_end|>"];
const PAD_GUESSES = ["<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>"];

function tokenName(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

/** The special tokens a chat template may name; transformers passes the same (its special_tokens_map). */
const SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token"];

/** Where a model folder keeps its chat template: tokenizer_config.json first, as transformers reads it. */
export type ChatTemplateFile = "tokenizer_config.json" | "chat_template.jinja" | "chat_template.json";

/** `bos_token`, `eos_token`, ... as tokenizer_config.json names them: the variables a chat template sees. */
function specialTokenNamesOf(config: Record<string, unknown>): Record<string, string> {
  const names: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const name = tokenName(config[key]);
    if (name !== null) names[key] = name;
  }
  return names;
}

class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  readonly specialTokenNames: Readonly<Record<string, string>>;
  readonly chatTemplate: string | null;
  readonly chatTemplateFile: ChatTemplateFile | null;
  private readonly tk: Tokenizer;
  private readonly specialIds: ReadonlySet<number>;

  constructor(readonly files: TokenizerFiles, source: string, templateFile: ChatTemplateFile) {
    // Decoding must give back exactly what was encoded: no clean-up of spaces before punctuation.
    const config = { ...files.config, clean_up_tokenization_spaces: false };
    this.tk = new Tokenizer(files.tokenizer, config);
    numericDigits((this.tk as unknown as { pre_tokenizer: unknown }).pre_tokenizer);
    const vocab = this.tk.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    this.specialIds = new Set([...this.tk.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    // tokenizer_config.json decides, an explicit null included (Qwen: "bos_token": null, so no BOS); the
    // guesses serve a bare tokenizer.json, or a config naming a token its vocabulary lacks.
    const find = (key: string, guesses: string[]): number | null => {
      if (key in files.config) {
        const name = tokenName(files.config[key]);
        if (name === null) return null;
        const id = this.tk.token_to_id(name);
        if (id !== undefined) return id;
      }
      for (const g of guesses) {
        const id = this.tk.token_to_id(g);
        if (id !== undefined) return id;
      }
      return null;
    };
    this.bosId = find("bos_token", BOS_GUESSES);
    const eos = find("eos_token", EOS_GUESSES);
    if (eos === null) throw new Error(`${source}: no end-of-sequence token (set "eos_token" in tokenizer_config.json)`);
    this.eosId = eos;
    this.padId = find("pad_token", PAD_GUESSES) ?? eos;
    this.specialTokenNames = specialTokenNamesOf(files.config);
    this.chatTemplate = chatTemplateOf(files.config, source);
    this.chatTemplateFile = this.chatTemplate === null ? null : templateFile;
  }

  encode(text: string): number[] {
    return this.tk.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    // The library refuses an empty list; a model that writes EOS first has written the empty string.
    if (ids.length === 0) return "";
    return this.tk.decode(ids as number[], { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | null {
    return this.tk.token_to_id(token) ?? null;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }
}

/**
 * tokenizer_config.json's `chat_template`: a string, or (older transformers) a list of named templates, of
 * which "default" is the chat one.
 */
function chatTemplateOf(config: Record<string, unknown>, source: string): string | null {
  const t = config["chat_template"];
  if (t === undefined || t === null) return null;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((x: unknown) => typeof x === "object" && x !== null && (x as { name?: unknown }).name === "default") as { template?: unknown } | undefined;
    if (typeof named?.template === "string") return named.template;
  }
  throw new Error(`${source}: tokenizer_config.json's chat_template is neither a template nor a list holding one named "default"`);
}

/**
 * A tokenizer from its Hugging Face files held in memory. `templateFile`: where the config's chat template came
 * from (loadTokenizer reads chat_template.jinja into the config), for errors about it.
 */
export function tokenizerFromFiles(files: TokenizerFiles, source = "tokenizer", templateFile: ChatTemplateFile = "tokenizer_config.json"): TextTokenizer {
  return new HfTokenizer(files, source, templateFile);
}

/**
 * Reads a folder's chat template into its tokenizer config when the config holds none: newer transformers keep
 * it in chat_template.jinja (or chat_template.json). Returns the file the template is in, or null for none.
 */
function readChatTemplateInto(dir: string, config: Record<string, unknown>): ChatTemplateFile | null {
  if (config["chat_template"] !== undefined) return config["chat_template"] === null ? null : "tokenizer_config.json";
  const jinja = join(dir, "chat_template.jinja");
  const json = join(dir, "chat_template.json");
  if (existsSync(jinja)) {
    config["chat_template"] = readFileSync(jinja, "utf8");
    return "chat_template.jinja";
  }
  if (existsSync(json)) {
    config["chat_template"] = readJsonObject(json)["chat_template"];
    return config["chat_template"] === undefined ? null : "chat_template.json";
  }
  return null;
}

/**
 * Loads a local Hugging Face tokenizer: a `tokenizer.json` file, or a model folder holding one. Beside it,
 * `tokenizer_config.json` names the special tokens and may hold the chat template; newer transformers keep the
 * template in `chat_template.jinja` (or `chat_template.json`) instead, which is read into the config, so a
 * checkpoint saved from it carries the template in its tokenizer_config.json. Nothing is fetched.
 */
export function loadTokenizer(path: string): TextTokenizer {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, "tokenizer.json") : path;
  if (!existsSync(file)) throw new Error(`${file}: no tokenizer.json there`);
  const tokenizer = readJsonObject(file);
  if (typeof tokenizer["model"] !== "object" || tokenizer["model"] === null) {
    throw new Error(`${file}: not a Hugging Face tokenizer.json (no "model" section)`);
  }
  const dir = dirname(file);
  const configFile = join(dir, "tokenizer_config.json");
  const config = existsSync(configFile) ? readJsonObject(configFile) : {};
  const templateFile = readChatTemplateInto(dir, config) ?? "tokenizer_config.json";
  return tokenizerFromFiles({ tokenizer, config }, file, templateFile);
}


/** Writes tokenizer.json and tokenizer_config.json into a folder. */
export function saveTokenizer(files: TokenizerFiles, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(files.tokenizer, null, 1) + "\n");
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(files.config, null, 2) + "\n");
}

/**
 * @huggingface/tokenizers 0.2's Digits pre-tokenizer splits off 0-9 only (`\d`), where the Rust library that
 * transformers and vLLM use splits off every character Unicode calls numeric (`char::is_numeric`: categories Nd,
 * Nl and No, so ¾ ½ ¼ ² as well). With SmolLM2's tokenizer (Digits, individual digits, then ByteLevel) " ¾" became
 * [ĠÂ, ¾] instead of [Ġ, Â¾]: 10 of GSM8K's 17,584 texts got other ids than the model was trained on. The
 * pattern of every Digits pre-tokenizer, inside a Sequence too, is made Unicode's (\p{N}).
 */
export function numericDigits(node: unknown): void {
  if (node instanceof DigitsPreTokenizer) {
    const p = node as unknown as { config: { individual_digits?: boolean }; pattern: RegExp };
    p.pattern = new RegExp(`[^\\p{N}]+|\\p{N}${p.config.individual_digits ? "" : "+"}`, "gu");
    return;
  }
  const inner = (node as { tokenizers?: unknown } | null)?.tokenizers;
  if (Array.isArray(inner)) inner.forEach(numericDigits);
}
