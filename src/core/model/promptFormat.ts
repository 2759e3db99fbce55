import type { TextTokenizer } from "../tokenizer/tokenizer";

/** The prompt a question becomes; the model writes the rationale after it. */
export function formatPrompt(question: string): string {
  return `Question: ${question}\nAnswer: `;
}

/** A prompt + completion as tokens: BOS, prompt, completion, EOS; `promptLength` counts BOS and prompt. */
export interface EncodedSequence {
  ids: number[];
  promptLength: number;
}

export function encodePrompt(tokenizer: TextTokenizer, question: string): number[] {
  return [...(tokenizer.bosId === null ? [] : [tokenizer.bosId]), ...tokenizer.encode(formatPrompt(question))];
}

export function encodeSequence(tokenizer: TextTokenizer, question: string, completion: string): EncodedSequence {
  const prompt = encodePrompt(tokenizer, question);
  return { ids: [...prompt, ...tokenizer.encode(completion), tokenizer.eosId], promptLength: prompt.length };
}

/** A batch of prompts laid out for incremental decoding. */
export interface LeftPaddedPrompts {
  /** Longest prompt: the width of the first decoding pass. */
  width: number;
  /** [rows, width] token ids, pad_token_id on the left. */
  ids: Int32Array;
  /** [rows, width] positions; they count real tokens only (0 on padding). */
  positions: Int32Array;
  /** Per row, which key columns are real tokens; decoding appends a true per step. */
  valid: boolean[][];
  /** Per row, the position of the next token. */
  nextPositions: number[];
}

/** Left padding, so every row's next token sits at the same column; positions count real tokens only. */
export function leftPadPrompts(prompts: readonly (readonly number[])[], padId: number): LeftPaddedPrompts {
  const B = prompts.length;
  const T = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(B * T).fill(padId);
  const positions = new Int32Array(B * T);
  const valid: boolean[][] = [];
  const nextPositions: number[] = [];
  prompts.forEach((p, b) => {
    const pad = T - p.length;
    valid.push(Array.from({ length: T }, (_, j) => j >= pad));
    for (let j = 0; j < p.length; j++) {
      ids[b * T + pad + j] = p[j] as number;
      positions[b * T + pad + j] = j;
    }
    nextPositions.push(p.length);
  });
  return { width: T, ids, positions, valid, nextPositions };
}
