import type { EncodedSequence } from "../model/promptFormat";
import type { TokenBatch } from "../engine/computeEngine";


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
