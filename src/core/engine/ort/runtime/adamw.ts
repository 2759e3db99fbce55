/**
 * AdamW on the host, in place, for the CPU provider (HostState): one pass over each parameter's four arrays.
 *
 * Why not the optimiser graph there: ORT runs each element-wise op of it as its own pass and allocates its
 * results, and onnxruntime-node copies every output into a new JavaScript buffer. At SmolLM2-135M's size
 * (134M parameters) the graph took 3.8–9 s a step and raised peak memory by 7 GB over the 2.2 GB the state
 * holds; this loop takes about 1.2 s on one core and allocates nothing (measured with the same arrays).
 *
 * The arithmetic is optimizerGraph's (stateGraphs.ts) in float64 per element, each result rounded to float32
 * once when stored, where the graph rounds after every operation: the two differ by float32 rounding.
 */

/** Σ x² in float64. */
export function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    s += v * v;
  }
  return s;
}

export interface AdamWScalars {
  beta1: number;
  beta2: number;
  /** 1 − β1^t and 1 − β2^t. */
  biasCorrection1: number;
  biasCorrection2: number;
  eps: number;
  lr: number;
  /** 1 − lr · weight decay for decayed parameters, 1 for the rest. */
  decayFactor: number;
  /** The global-norm clip factor for this step's gradients. */
  clip: number;
}

/** p, m and v updated in place from g (unchanged). */
export function adamwInPlace(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamWScalars): void {
  const { beta1, beta2, eps, lr, decayFactor, clip } = s;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const bc1 = s.biasCorrection1;
  const bc2 = s.biasCorrection2;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const x = g[i]! * clip;
    const mi = m[i]! * beta1 + x * c1;
    const vi = v[i]! * beta2 + x * x * c2;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decayFactor - (mi / bc1 / (Math.sqrt(vi / bc2) + eps)) * lr;
  }
}

/** TfEngine's clip factor: min(1, maxNorm / (norm + 1e-6)). */
export function clipFactor(norm: number, maxNorm: number): number {
  return Math.min(maxNorm / (norm + 1e-6), 1);
}
