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
