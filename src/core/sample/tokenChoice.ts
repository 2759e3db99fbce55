/**
 * Choosing each row's next token from its logits, and the token's log-probability under the model: the host's
 * share of every decoding step. At a real vocabulary it is not small: at SmolLM2's 49,152 rows and batch 64 it
 * took about a fifth of a 135M model's generation on one core, and with top-p or top-k, which sorted the whole
 * vocabulary per row, several times the model's own step. So: one pass for the maximum, one for the tempered
 * probabilities (at temperature 1 also the log-probability's partition; otherwise a pass of its own), with
 * exponentials in plain arithmetic (exp2.ts, about four times Math.exp's speed, within a few units in the last
 * place), a scratch buffer reused across calls, and for top-p and top-k a sort of only the tokens that can be in
 * the kept set. The tests hold it to
 * the plain definitions: the same draws and log-probabilities as they give with the same exponentials, bit for
 * bit, and with Math.exp's, the same draws and log-probabilities within 1e-12.
 */
import { exp2 } from "../util/exp2";
import type { Rng } from "../util/rng";

/** Probabilities of the current row; grown to the largest vocabulary seen, never shrunk. */
let scratch = new Float64Array(0);
/** Each token's bucket (topCandidates); likewise reused. */
let buckets = new Uint8Array(0);

/** Buckets of log-probability relative to the row's best token, BUCKETS_PER_NAT per nat: see topCandidates. */
const BUCKETS_PER_NAT = 4;
const BUCKETS = 256;

export interface TokenChoice {
  token: number;
  /** log softmax(l)[token], at temperature 1: the model's own log-probability of the token. */
  logProb: number;
}

/**
 * Temperature, then top-k, then nucleus (top-p) filtering, then a draw from the seeded generator; with the
 * drawn token's untempered log-probability (NaN when not `withLogProb`: at a temperature other than 1 it costs
 * a second exponential per token, which is most of the time here). temperature ≤ 0: the best token (greedy).
 */
export function chooseToken(l: Float32Array, temperature: number, topP: number, topK: number, rng: Rng, withLogProb = true): TokenChoice {
  const n = l.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if ((l[i] as number) > max) max = l[i] as number;
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if ((l[i] as number) > (l[best] as number)) best = i;
    return { token: best, logProb: withLogProb ? (l[best] as number) - max - Math.log(partition(l, max)) : NaN };
  }
  if (scratch.length < n) scratch = new Float64Array(n);
  const probs = scratch;
  let sum = 0;
  // e^((l − max)/T) = 2^(l·scale − offset)
  const scale = Math.LOG2E / temperature;
  const offset = max * scale;
  for (let i = 0; i < n; i++) sum += probs[i] = exp2((l[i] as number) * scale - offset);
  const token = draw(probs, n, sum, l, max, temperature, topP, topK, rng);
  if (!withLogProb) return { token, logProb: NaN };
  // At temperature 1 the tempered sum is the partition itself (the same terms in the same order).
  return { token, logProb: (l[token] as number) - max - Math.log(temperature === 1 ? sum : partition(l, max)) };
}

/** Σ exp(l − max), in index order. */
function partition(l: Float32Array, max: number): number {
  const offset = max * Math.LOG2E;
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += exp2((l[i] as number) * Math.LOG2E - offset);
  return sum;
}

/** The draw over probs[0..n) (summing to `sum`), filtered by top-k and top-p. */
function draw(probs: Float64Array, n: number, sum: number, l: Float32Array, max: number, temperature: number, topP: number, topK: number, rng: Rng): number {
  if ((topK > 0 && topK < n) || topP < 1) {
    const kept = keptTokens(probs, n, sum, topP, topK, topCandidates(probs, n, sum, l, max, temperature, topP, topK)) ?? keptTokens(probs, n, sum, topP, topK, null)!;
    let total = 0;
    for (const i of kept) total += probs[i] as number;
    let u = rng.next() * total;
    for (const i of kept) {
      u -= probs[i] as number;
      if (u <= 0) return i;
    }
    return kept[kept.length - 1] as number;
  }
  let u = rng.next() * sum;
  for (let i = 0; i < n; i++) {
    u -= probs[i] as number;
    if (u <= 0) return i;
  }
  return n - 1;
}

/**
 * The kept tokens, most probable first (ties by index): the first min(topK, n) of the vocabulary in that order,
 * cut where their probabilities first add up to topP. From `candidates` (every token at least as probable as
 * some threshold) when they hold the whole kept set, otherwise null; from the whole vocabulary when null.
 */
function keptTokens(probs: Float64Array, n: number, sum: number, topP: number, topK: number, candidates: number[] | null): number[] | null {
  const all = candidates === null;
  const order = candidates ?? Array.from({ length: n }, (_, i) => i);
  // Stable: equal probabilities stay in index order, so a candidate set sorts as the same prefix as all tokens.
  order.sort((a, b) => (probs[b] as number) - (probs[a] as number));
  let keep = topK > 0 ? Math.min(topK, n) : n;
  if (topP < 1) {
    let acc = 0;
    for (let j = 0; j < Math.min(keep, order.length); j++) {
      acc += (probs[order[j] as number] as number) / sum;
      if (acc >= topP) {
        keep = j + 1;
        break;
      }
    }
  }
  if (!all && keep > order.length) return null;
  return order.slice(0, keep);
}

/**
 * Tokens that hold the kept set, found without sorting the vocabulary: the row's tokens bucketed by how far
 * their tempered log-probability is below the best one (BUCKETS_PER_NAT buckets a nat), buckets taken from the
 * top until they hold topK tokens or, with margin, topP of the mass; and every token as probable as the least
 * probable one taken (ties at the edge), in index order. null: the buckets alone do not settle it.
 */
function topCandidates(probs: Float64Array, n: number, sum: number, l: Float32Array, max: number, temperature: number, topP: number, topK: number): number[] | null {
  if (buckets.length < n) buckets = new Uint8Array(n);
  const count = new Float64Array(BUCKETS);
  const mass = new Float64Array(BUCKETS);
  const scale = BUCKETS_PER_NAT / temperature;
  for (let i = 0; i < n; i++) {
    const b = Math.min(BUCKETS - 1, Math.floor((max - (l[i] as number)) * scale));
    buckets[i] = b;
    count[b] = (count[b] as number) + 1;
    mass[b] = (mass[b] as number) + (probs[i] as number);
  }
  let last = -1;
  let tokens = 0;
  let acc = 0;
  for (let b = 0; b < BUCKETS - 1; b++) {
    tokens += count[b] as number;
    acc += mass[b] as number;
    if ((topK > 0 && tokens >= topK) || (topP < 1 && acc / sum >= topP + 1e-9)) {
      last = b;
      break;
    }
  }
  if (last < 0) return null;
  const out: number[] = [];
  let threshold = Infinity;
  for (let i = 0; i < n; i++) {
    if ((buckets[i] as number) > last) continue;
    out.push(i);
    if ((probs[i] as number) < threshold) threshold = probs[i] as number;
  }
  // A token of a later bucket as probable as the least probable one taken (exp rounding alike): in too, in order.
  const ties: number[] = [];
  for (let i = 0; i < n; i++) if ((buckets[i] as number) > last && (probs[i] as number) >= threshold) ties.push(i);
  return ties.length === 0 ? out : [...out, ...ties].sort((a, b) => a - b);
}

/** The draw alone (the bench's sampler, and callers that do not keep log-probabilities). */
export function sampleToken(l: Float32Array, temperature: number, topP: number, topK: number, rng: Rng): number {
  return chooseToken(l, temperature, topP, topK, rng, false).token;
}
