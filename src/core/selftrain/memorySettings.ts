import type { MemorySettings } from "../model/memoryEstimate";
import type { SelfTrainConfig } from "./configTypes";

/** The shapes the memory estimate needs from a run's settings: the larger of the warm-up's and SFT's micro-batches. */
export function memorySettings(c: SelfTrainConfig): MemorySettings {
  const bigger = (a: { microBatchSize: number; maxLength: number }, b: { microBatchSize: number; maxLength: number }) => (a.microBatchSize * a.maxLength >= b.microBatchSize * b.maxLength ? a : b);
  const sft = bigger(c.warmup, c.sft);
  return {
    sft: { microBatchSize: sft.microBatchSize, maxLength: sft.maxLength },
    dpo: { microBatchSize: c.dpo.microBatchSize, maxLength: c.dpo.maxLength },
    // Prompts: about half of a training sequence's length, at most 128 tokens.
    sampling: { batchSize: c.sampling.batchSize, maxNewTokens: c.sampling.maxNewTokens, promptTokens: Math.round(Math.min(c.sft.maxLength, 256) / 2) },
  };
}
