/**
 * The Hugging Face `tokenizer.json` (and `tokenizer_config.json`) this project writes for the tokenizers it
 * trains: byte-level BPE (as GPT-2 and Llama 3), digits split one by one (as Llama), so arithmetic stays
 * digit-wise, and BOS/EOS/PAD special tokens.
 */

export interface SpecialTokens {
  pad: string;
  bos: string;
  eos: string;
}

export const DEFAULT_SPECIAL_TOKENS: SpecialTokens = { pad: "<pad>", bos: "<s>", eos: "</s>" };

/** GPT-2's byte-to-unicode table: every byte maps to a printable character, so BPE works on text safely. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = "!".charCodeAt(0); b <= "~".charCodeAt(0); b++) printable.push(b);
  for (let b = "¡".charCodeAt(0); b <= "¬".charCodeAt(0); b++) printable.push(b);
  for (let b = "®".charCodeAt(0); b <= "ÿ".charCodeAt(0); b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
}

/** The tokenizer.json + tokenizer_config.json of a byte-level BPE with the given vocabulary and merges. */
export function byteLevelBpeJson(vocab: Map<string, number>, merges: Array<[string, string]>, specials: SpecialTokens): TokenizerFiles {
  const specialList = [specials.pad, specials.bos, specials.eos];
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialList.map((content) => ({
      id: vocab.get(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Digits", individual_digits: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: specials.bos,
    eos_token: specials.eos,
    pad_token: specials.pad,
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_eos_token: false,
    model_max_length: 1024,
  };
  return { tokenizer, config };
}
