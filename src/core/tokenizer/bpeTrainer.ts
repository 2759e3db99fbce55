import { Tokenizer } from "@huggingface/tokenizers";
import { numericDigits } from "./tokenizer";
import { byteLevelBpeJson, bytesToUnicode, DEFAULT_SPECIAL_TOKENS, type SpecialTokens, type TokenizerFiles } from "./tokenizerJson";

export interface BpeTrainOptions {
  /** Final vocabulary size, special tokens and the 256 byte symbols included. */
  vocabSize: number;
  /** Pairs seen fewer times than this are not merged. */
  minFrequency?: number;
  specialTokens?: SpecialTokens;
}

/**
 * Trains a byte-level BPE tokenizer on a corpus and returns its Hugging Face files.
 *
 * The corpus is pre-tokenized by the very pre-tokenizer the saved tokenizer.json declares (run through the
 * same library that loads it), so the merges learnt here are the merges applied at load time.
 * Ties between equally frequent pairs break by the pair's text, so training is deterministic.
 */
export function trainBpe(corpus: Iterable<string>, options: BpeTrainOptions): TokenizerFiles {
  const specials = options.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  const minFrequency = options.minFrequency ?? 2;
  const byteSymbols = bytesToUnicode();
  const vocab = new Map<string, number>();
  for (const s of [specials.pad, specials.bos, specials.eos]) vocab.set(s, vocab.size);
  for (const b of [...byteSymbols].sort()) vocab.set(b, vocab.size);
  if (options.vocabSize < vocab.size) throw new Error(`vocabSize must be at least ${vocab.size}`);

  const base = byteLevelBpeJson(vocab, [], specials);
  const preTokenizer = new Tokenizer(base.tokenizer, base.config).pre_tokenizer;
  if (!preTokenizer) throw new Error("tokenizer has no pre-tokenizer");
  // Split as the tokenizer will encode (and as the Rust library would): every Unicode digit on its own.
  numericDigits(preTokenizer);

  // Word → frequency.
  const wordFreq = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of preTokenizer.pre_tokenize(text)) wordFreq.set(piece, (wordFreq.get(piece) ?? 0) + 1);
  }

  // Symbols as integer ids into `symbols`; words as arrays of symbol ids.
  const symbols: string[] = [];
  const symbolId = new Map<string, number>();
  const intern = (s: string): number => {
    let id = symbolId.get(s);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(s);
      symbolId.set(s, id);
    }
    return id;
  };
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of wordFreq) {
    words.push(Array.from(w, intern));
    freqs.push(f);
  }

  const SHIFT = 1 << 20;
  const key = (a: number, b: number): number => a * SHIFT + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1): void => {
    const w = words[wi] as number[];
    const f = (freqs[wi] as number) * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i] as number, w[i + 1] as number);
      pairCount.set(k, (pairCount.get(k) ?? 0) + f);
      if (sign > 0) {
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  const merges: Array<[string, string]> = [];
  while (vocab.size < options.vocabSize) {
    let best = -1;
    let bestCount = 0;
    let bestText = "";
    for (const [k, c] of pairCount) {
      if (c < minFrequency || c < bestCount) continue;
      const text = symbols[Math.floor(k / SHIFT)]! + " " + symbols[k % SHIFT]!;
      if (c > bestCount || text < bestText) {
        best = k;
        bestCount = c;
        bestText = text;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / SHIFT);
    const b = best % SHIFT;
    const merged = symbols[a]! + symbols[b]!;
    const m = intern(merged);
    merges.push([symbols[a]!, symbols[b]!]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const wi of pairWords.get(best) ?? []) {
      const w = words[wi] as number[];
      addPairs(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(m);
          i++;
        } else {
          out.push(w[i] as number);
        }
      }
      words[wi] = out;
      addPairs(wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
  }
  return byteLevelBpeJson(vocab, merges, specials);
}
