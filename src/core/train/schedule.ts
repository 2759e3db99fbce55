/**
 * Learning rate at an optimiser step (0-based): linear warm-up to the peak over `warmupSteps`, then cosine
 * decay to zero at `totalSteps` (transformers' get_cosine_schedule_with_warmup).
 */
export function cosineWithWarmup(step: number, totalSteps: number, warmupSteps: number, peak: number): number {
  // (step + 1) rather than transformers' step: the first update is not wasted at a learning rate of zero.
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return peak * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

export function warmupSteps(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}
