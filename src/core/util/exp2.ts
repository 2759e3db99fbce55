/**
 * 2^y in plain arithmetic, about four times faster than Math.exp in V8 (measured 3.9-6.9 ns against 17.7-26.4 ns a
 * value in a loop over 49,152 logits), within a few units in the last place: the token choice's exponentials
 * over the vocabulary at every decoding step (tokenChoice.ts). The usual method: y·256 rounded to an integer
 * k, 2^(k/256) from two tables (2^(j/256) for the low 8 bits, a power of two for the rest), times e^r for the
 * remainder r (|r| ≤ ln2/512) by a degree-4 polynomial. Results below 2^-1022 (subnormal) are 0; NaN gives 0.
 */
const N = 256;
const SHIFT = 6755399441055744.0; // 1.5 · 2^52: (z + SHIFT) − SHIFT rounds z to an integer (ties to even)
const LN2_N = Math.LN2 / N;
const FRACTION = Float64Array.from({ length: N }, (_, j) => Math.pow(2, j / N));
/** 2^e for e in −1022 … 1023 at [e + 1022]. */
const POWER = Float64Array.from({ length: 2046 }, (_, i) => Math.pow(2, i - 1022));

export function exp2(y: number): number {
  const z = y * N;
  // Below 2^-1022 (flushed to 0, as is NaN), and from 2^1023.99… on (Infinity).
  if (!(z >= -1022 * N)) return 0;
  if (z >= 1023.99 * N) return Math.pow(2, y);
  const kn = z + SHIFT - SHIFT;
  const r = (z - kn) * LN2_N;
  const k = kn | 0;
  return (FRACTION[k & (N - 1)] as number) * (POWER[(k >> 8) + 1022] as number) * (1 + r * (1 + r * (0.5 + r * (0.16666666666666666 + r * 0.041666666666666664))));
}
