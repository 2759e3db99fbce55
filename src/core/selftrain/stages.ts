import type { RunMode, StageName } from "../../shared/runTypes";

/** Stages of a round, in order; round 0 is the warm-up. Plain self-training has no DPO step. */
export function roundStages(round: number, mode: RunMode): StageName[] {
  if (round === 0) return ["warmup", "eval"];
  return mode === "st" ? ["sample-sft", "pseudo-labels", "sft", "eval"] : ["sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"];
}
