// chooseToken against the plain definitions it replaces (a full sort of the vocabulary for top-p and top-k, a
// second pass for the log-probability): with the same exponentials (exp2) the same token and log-probability bit
// for bit for the same generator state; with Math.exp's the same token and the log-probability within 1e-12.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseToken, sampleToken } from "../../../src/core/sample/tokenChoice";
import { Rng } from "../../../src/core/util/rng";
import { exp2 } from "../../../src/core/util/exp2";

/** e^((x − max)/t), as chooseToken computes it, or by Math.exp. */
type Exp = (x: number, max: number, t: number) => number;
const fast: Exp = (x, max, t) => {
  const scale = Math.LOG2E / t;
  return exp2(x * scale - max * scale);
};
const byMath: Exp = (x, max, t) => Math.exp((x - max) / t);

function sampleTokenByDefinition(l: Float32Array, temperature: number, topP: number, topK: number, rng: Rng, exp: Exp): number {
  let max = -Infinity;
  for (let i = 0; i < l.length; i++) if ((l[i] as number) > max) max = l[i] as number;
  const probs = new Float64Array(l.length);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += probs[i] = exp(l[i] as number, max, temperature);
  let order: number[] | null = null;
  if ((topK > 0 && topK < l.length) || topP < 1) {
    order = Array.from(probs.keys()).sort((a, b) => (probs[b] as number) - (probs[a] as number));
    let keep = topK > 0 ? Math.min(topK, order.length) : order.length;
    if (topP < 1) {
      let acc = 0;
      for (let j = 0; j < keep; j++) {
        acc += (probs[order[j] as number] as number) / sum;
        if (acc >= topP) {
          keep = j + 1;
          break;
        }
      }
    }
    order = order.slice(0, keep);
    sum = order.reduce((a, i) => a + (probs[i] as number), 0);
  }
  let u = rng.next() * sum;
  if (order) {
    for (const i of order) {
      u -= probs[i] as number;
      if (u <= 0) return i;
    }
    return order[order.length - 1] as number;
  }
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i] as number;
    if (u <= 0) return i;
  }
  return l.length - 1;
}

function logSoftmaxAt(l: Float32Array, i: number, exp: Exp): number {
  let max = -Infinity;
  for (const x of l) if (x > max) max = x;
  let sum = 0;
  for (const x of l) sum += exp(x, max, 1);
  return (l[i] as number) - max - Math.log(sum);
}

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if ((l[i] as number) > (l[best] as number)) best = i;
  return best;
}

/** Rows like a model's (a few likely tokens over a long tail), flat ones, ties, masked tokens. */
function rows(V: number, seed: number): Array<{ kind: string; l: Float32Array }> {
  const rng = new Rng(seed);
  const peaked = Float32Array.from({ length: V }, () => (rng.next() - 0.5) * 6);
  for (let k = 0; k < 12; k++) peaked[Math.floor(rng.next() * V)] = 8 + rng.next() * 6;
  const flat = Float32Array.from({ length: V }, () => rng.next() * 0.5);
  const ties = Float32Array.from({ length: V }, (_, i) => (i % 7 === 0 ? 3 : i % 5 === 0 ? 2 : Math.floor(rng.next() * 3) - 4));
  const masked = Float32Array.from(peaked, (x, i) => (i % 3 === 0 ? -Infinity : x));
  const spread = Float32Array.from({ length: V }, () => (rng.next() - 0.5) * 400);
  return [
    { kind: "peaked", l: peaked },
    { kind: "flat", l: flat },
    { kind: "ties", l: ties },
    { kind: "masked", l: masked },
    { kind: "spread", l: spread },
  ];
}

test("chooseToken draws the token the plain definition draws and gives its log-probability, exactly with the same exponentials and within 1e-12 with Math.exp, for every filter", () => {
  let compared = 0;
  for (const V of [50, 2053]) {
    for (const { kind, l } of rows(V, V)) {
      for (const temperature of [0, 0.7, 1, 1.3]) {
        for (const topP of [1, 0.999, 0.9, 0.5, 0.01]) {
          for (const topK of [0, 1, 3, 40, V, V + 5]) {
            for (const seed of [1, 2, 3]) {
              const [a, b, c] = [new Rng(seed * 97 + V), new Rng(seed * 97 + V), new Rng(seed * 97 + V)];
              const got = chooseToken(l, temperature, topP, topK, a);
              const want = temperature <= 0 ? argmax(l) : sampleTokenByDefinition(l, temperature, topP, topK, b, fast);
              const what = `${kind} V=${V} T=${temperature} topP=${topP} topK=${topK} seed=${seed}`;
              assert.equal(got.token, want, what);
              assert.equal(Object.is(got.logProb, logSoftmaxAt(l, want, fast)), true, `${what}: log-prob ${got.logProb} vs ${logSoftmaxAt(l, want, fast)}`);
              assert.equal(a.next(), b.next(), `${what}: the generator advanced alike`);
              if (temperature > 0) assert.equal(sampleToken(l, temperature, topP, topK, new Rng(seed)), sampleTokenByDefinition(l, temperature, topP, topK, new Rng(seed), fast), `${what}: the draw alone`);
              // With Math.exp: a draw differs only where it falls within rounding of a boundary (none here).
              assert.equal(temperature <= 0 ? argmax(l) : sampleTokenByDefinition(l, temperature, topP, topK, c, byMath), want, `${what}: with Math.exp`);
              const exact = logSoftmaxAt(l, want, byMath);
              assert.ok(Math.abs(got.logProb - exact) <= 1e-12 * Math.max(1, Math.abs(exact)), `${what}: log-prob ${got.logProb} vs ${exact} with Math.exp`);
              compared++;
            }
          }
        }
      }
    }
  }
  assert.equal(compared, 2 * 5 * 4 * 5 * 6 * 3);
});

test("top-p and top-k keep what they should: top-k 1 is the best token, top-p 0.9 on two likely tokens never leaves them", () => {
  const l = new Float32Array(1000).fill(0);
  l[17] = 20;
  l[400] = 19.5;
  const rng = new Rng(5);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    assert.equal(sampleToken(l, 1.5, 1, 1, rng), 17);
    seen.add(sampleToken(l, 1, 0.9, 0, rng));
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [17, 400]);
});

test("exp2 is 2^y within 1e-15 relative over the whole normal range; 0 below it and for NaN", () => {
  const rng = new Rng(11);
  let worst = 0;
  for (let i = 0; i < 200_000; i++) {
    const y = -1021.9 + rng.next() * 2045.8;
    const want = Math.pow(2, y);
    worst = Math.max(worst, Math.abs(exp2(y) - want) / want);
  }
  assert.ok(worst <= 1e-15, `worst relative error ${worst}`);
  for (const [y, want] of [[0, 1], [-1, 0.5], [1, 2], [10, 1024], [-1022, 2 ** -1022], [-1023, 0], [-Infinity, 0], [NaN, 0], [1024, Infinity], [Infinity, Infinity]] as const) assert.equal(exp2(y), want, `2^${y}`);
});
