/**
 * Unbiased pass@k (Chen et al. 2021): with n samples of which c are correct, the chance that at least one of
 * k drawn without replacement is correct: 1 − C(n−c, k) / C(n, k), computed as a product for stability.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (k > n) throw new Error(`pass@${k} needs at least ${k} samples per question, got ${n}`);
  if (n - c < k) return 1;
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

/** Mean pass@k over questions, from per-question (samples, correct) counts. */
export function meanPassAtK(counts: ReadonlyArray<{ n: number; c: number }>, k: number): number {
  if (counts.length === 0) return 0;
  return counts.reduce((a, q) => a + passAtK(q.n, q.c, k), 0) / counts.length;
}
