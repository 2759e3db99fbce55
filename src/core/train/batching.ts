import type { EncodedSequence } from "../model/promptFormat";
import type { TokenBatch } from "../engine/computeEngine";

/**
 * TRL's `max_prompt_length` with its default truncation_mode "keep_end", as the paper's code (TianduoWang/DPO-ST)
 * uses it: when a prompt and the longest of its completions do not fit `maxLength` positions (makeBatch's: one fewer
 * than the tokens), the prompt keeps only its last `maxPromptLength` tokens: the end of the question and the
 * template's turn header, which the completion follows. Otherwise makeBatch would cut the completion, the only part
 * trained on, from behind a long prompt. What is still too long is then cut at its end by makeBatch, as before.
 * `group` shares one prompt (a pair's chosen and rejected: DPO compares them after the same prompt); sequences that
 * fit, or a `maxPromptLength` of 0, come back as they are.
 */
export function limitPrompt(group: readonly EncodedSequence[], maxLength: number, maxPromptLength: number): EncodedSequence[] {
  if (maxPromptLength <= 0 || Math.max(...group.map((s) => s.ids.length - 1)) <= maxLength) return [...group];
  return group.map((s) => {
    const cut = s.promptLength - maxPromptLength;
    return cut > 0 ? { ids: s.ids.slice(cut), promptLength: maxPromptLength } : s;
  });
}

export function makeBatch(seqs: readonly EncodedSequence[], padId: number, maxLength: number): TokenBatch {
  const length = Math.min(maxLength, Math.max(1, ...seqs.map((s) => s.ids.length - 1)));
  const B = seqs.length;
  const inputs = new Int32Array(B * length).fill(padId);
  const targets = new Int32Array(B * length).fill(padId);
  const mask = new Float32Array(B * length);
  let tokens = 0;
  let truncated = 0;
  seqs.forEach((s, b) => {
    const n = Math.min(s.ids.length - 1, length);
    if (s.ids.length - 1 > length) truncated++;
    for (let t = 0; t < n; t++) {
      inputs[b * length + t] = s.ids[t] as number;
      targets[b * length + t] = s.ids[t + 1] as number;
      // Target t is token t+1: a completion token when t+1 ≥ promptLength.
      if (t + 1 >= s.promptLength) {
        mask[b * length + t] = 1;
        tokens++;
      }
    }
  });
  return { batch: B, length, inputs, targets, mask, tokens, truncated };
}
