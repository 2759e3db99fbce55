import { test } from "node:test";
import assert from "node:assert/strict";
import type * as TfCore from "@tensorflow/tfjs-core";
import { cpuTf } from "../../../helpers/tf";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../../src/core/model/weights";
import { TfEngine } from "../../../../src/core/engine/tf/tfEngine";
import { OrtEngine } from "../../../../src/core/engine/ort/ortEngine";
import { createEngine } from "../../../../src/core/engine/auto/createEngine";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type TokenBatch } from "../../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../../src/core/train/batching";
import { sftLoss, sequenceLogProbs, tokenLogProbs } from "../../../../src/core/engine/tf/tfLosses";
import { dpoMetricsHost } from "../../../../src/core/train/dpoLoss";
import { dpoLoss } from "../../../../src/core/engine/tf/tfLosses";
import type { EncodedSequence } from "../../../../src/core/model/promptFormat";
import { Rng } from "../../../../src/core/util/rng";

// Parity of the ONNX Runtime engine with the TensorFlow.js reference (plain cpu backend, float32 throughout):
// gradients within a relative 1e-5 of TF.js autodiff, the same losses over optimiser steps, per-token
// log-probabilities within 1e-4, identical greedy decodes. Three tiny models cover tied and untied embeddings
// and attention with 1, 2 and 4 query heads per key/value head.
const CONFIGS: Record<string, ModelConfig> = {
  tied: tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 }),
  untied: tinyConfig(37, { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: false, rope_theta: 500000, rms_norm_eps: 1e-6 }),
  // Plain multi-head attention (G = 1), head dimension 12 and hidden 36: no power of two anywhere.
  mha: tinyConfig(29, { hidden_size: 36, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 3, num_key_value_heads: 3, max_position_embeddings: 64 }),
};
const GRAD_TOL = 1e-5;

/** Random weights large enough for peaked attention and distinct logits, with norm weights away from 1. */
function randomWeights(c: ModelConfig, seed: number): HostWeights {
  const w = initWeights(c, seed, 0.2);
  const rng = new Rng(seed + 100);
  for (const [name, t] of w) if (name.endsWith("norm.weight")) for (let i = 0; i < t.data.length; i++) t.data[i] = 1 + 0.3 * rng.normal();
  return w;
}

/** Sequences of 4–20 tokens (BOS, random body, EOS) with prompts of 1–4 tokens. */
function randomSequences(c: ModelConfig, n: number, seed: number, minLen = 4, maxLen = 20): EncodedSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = rng.int(minLen, maxLen);
    const ids = [1, ...Array.from({ length: len - 2 }, () => rng.int(3, c.vocab_size - 1)), 2];
    return { ids, promptLength: rng.int(1, 4) };
  });
}

/** ‖a − b‖ / ‖b‖. */
function relError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += ((a[i] as number) - (b[i] as number)) ** 2;
    n += (b[i] as number) ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

type Tf = typeof TfCore;

function argmaxRows(l: Float32Array, rows: number, V: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < V; i++) if (l[r * V + i]! > l[r * V + best]!) best = i;
    return best;
  });
}

/**
 * Greedy decoding by both engines, TF.js's tokens fed to both: asserts the same tokens at every step and
 * returns the largest logit difference and the tokens.
 */
async function greedyParity(a: ComputeEngine, b: ComputeEngine, prompts: number[][], steps: number): Promise<{ worst: number; tokens: number[][] }> {
  const V = a.config.vocab_size;
  const da = await a.startDecoding(prompts);
  const db = await b.startDecoding(prompts);
  let la = da.logits;
  let lb = db.logits;
  let worst = 0;
  const tokens: number[][] = [];
  for (let s = 0; s < steps; s++) {
    worst = Math.max(worst, maxAbsDiff(la, lb));
    const ta = argmaxRows(la, prompts.length, V);
    assert.deepEqual(argmaxRows(lb, prompts.length, V), ta, `step ${s}`);
    tokens.push(ta);
    if (s === steps - 1) break;
    la = await da.session.step(ta);
    lb = await db.session.step(ta);
  }
  da.session.dispose();
  db.session.dispose();
  return { worst, tokens };
}

function tfTensors(tf: Tf, b: TokenBatch) {
  return {
    inputs: tf.tensor2d(b.inputs, [b.batch, b.length], "int32"),
    targets: tf.tensor2d(b.targets, [b.batch, b.length], "int32"),
    mask: tf.tensor2d(b.mask, [b.batch, b.length], "float32"),
  };
}

/** TF.js autodiff of a loss of the model, gradients by Hugging Face name. */
function tfGrads(tf: Tf, engine: TfEngine, loss: () => TfCore.Scalar): { value: number; grads: Map<string, Float32Array> } {
  const { value, grads } = tf.variableGrads(loss, [...engine.model.params.values()]);
  const out = new Map<string, Float32Array>();
  for (const [name, v] of engine.model.params) out.set(name, grads[v.name]!.dataSync() as Float32Array);
  const result = { value: value.dataSync()[0]!, grads: out };
  tf.dispose([value, ...Object.values(grads)]);
  return result;
}

function ortGrads(engine: OrtEngine): Map<string, Float32Array> {
  const g = engine.accumulatedGradients();
  assert.ok(g, "no accumulated gradients");
  return new Map([...g].map(([name, t]) => [name, t.data]));
}

function compareGrads(label: string, ort: Map<string, Float32Array>, ref: Map<string, Float32Array>): number {
  assert.deepEqual([...ort.keys()].sort(), [...ref.keys()].sort());
  let worst = 0;
  for (const [name, r] of ref) {
    const e = relError(ort.get(name)!, r);
    assert.ok(e < GRAD_TOL, `${label} ${name}: relative error ${e.toExponential(2)} (‖g‖ = ${Math.hypot(...r).toExponential(2)})`);
    worst = Math.max(worst, e);
  }
  return worst;
}

for (const [kind, c] of Object.entries(CONFIGS)) {
  test(`${kind}: SFT loss and gradients match TF.js autodiff`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 1);
    const te = new TfEngine(tf, c, w, "cpu");
    const oe = new OrtEngine(c, w, { threads: 1 });
    const batch = makeBatch(randomSequences(c, 5, 2), c.pad_token_id, 32);
    const tt = tfTensors(tf, batch);
    const ref = tfGrads(tf, te, () => tf.mul(sftLoss(tf, te.model.forward(tt.inputs).logits, tt.targets, tt.mask), 0.7) as TfCore.Scalar);
    const { loss } = await oe.sftBackward(batch, 0.7);
    assert.ok(Math.abs(loss - ref.value / 0.7) < 1e-5 * Math.abs(loss), `loss ${loss} vs ${ref.value / 0.7}`);
    const worst = compareGrads("sft", ortGrads(oe), ref.grads);
    t.diagnostic(`max relative gradient error ${worst.toExponential(2)}; loss ${loss} vs ${ref.value / 0.7}`);
    tf.dispose(Object.values(tt));
    te.dispose();
    oe.dispose();
  });

  test(`${kind}: DPO loss, TRL metrics and gradients match TF.js autodiff (chosen and rejected of different lengths)`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 3);
    const te = new TfEngine(tf, c, w, "cpu");
    const oe = new OrtEngine(c, w, { threads: 1 });
    const chosen = makeBatch(randomSequences(c, 4, 4, 4, 12), c.pad_token_id, 32);
    const rejected = makeBatch(randomSequences(c, 4, 5, 10, 20), c.pad_token_id, 32);
    assert.notEqual(chosen.length, rejected.length);
    const rng = new Rng(6);
    const refC = Float32Array.from({ length: 4 }, () => -30 + 5 * rng.normal());
    const refR = Float32Array.from({ length: 4 }, () => -50 + 5 * rng.normal());
    const beta = 0.1;
    const ct = tfTensors(tf, chosen);
    const rt = tfTensors(tf, rejected);
    let pc: Float32Array | null = null;
    let pr: Float32Array | null = null;
    const ref = tfGrads(tf, te, () => {
      const lc = sequenceLogProbs(tf, te.model.forward(ct.inputs).logits, ct.targets, ct.mask);
      const lr = sequenceLogProbs(tf, te.model.forward(rt.inputs).logits, rt.targets, rt.mask);
      pc = lc.dataSync() as Float32Array;
      pr = lr.dataSync() as Float32Array;
      return tf.mul(dpoLoss(tf, lc, lr, tf.tensor1d(refC), tf.tensor1d(refR), beta).loss, 1.5) as TfCore.Scalar;
    });
    const want = dpoMetricsHost(pc!, pr!, refC, refR, beta);
    const got = await oe.dpoBackward(chosen, rejected, refC, refR, beta, 1.5);
    for (const k of Object.keys(want) as Array<keyof typeof want>) {
      assert.ok(Math.abs(got[k] - want[k]) <= 1e-5 * Math.max(1, Math.abs(want[k])), `${k}: ${got[k]} vs ${want[k]}`);
    }
    assert.ok(Math.abs(ref.value / 1.5 - want.loss) < 1e-5);
    const worst = compareGrads("dpo", ortGrads(oe), ref.grads);
    t.diagnostic(`max relative gradient error ${worst.toExponential(2)}; loss ${got.loss} vs ${want.loss}; accuracies ${got["rewards/accuracies"]}`);
    tf.dispose([...Object.values(ct), ...Object.values(rt)]);
    te.dispose();
    oe.dispose();
  });

  test(`${kind}: the same losses and gradient norms over AdamW steps with clipping and accumulation, SFT then DPO`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 7);
    const te = new TfEngine(tf, c, w, "cpu");
    const oe = new OrtEngine(c, w, { threads: 2 });
    const settings = { ...DEFAULT_OPTIMIZER, maxGradNorm: 0.5, weightDecay: 0.1 };
    let clipped = 0;
    let worstLoss = 0;
    let worstNorm = 0;
    for (let step = 0; step < 4; step++) {
      // Two micro-batches of different lengths per step, each weighted by its share as the trainer does.
      for (const [i, n] of [3, 2].entries()) {
        const batch = makeBatch(randomSequences(c, n, 10 * step + i), c.pad_token_id, 32);
        const a = await te.sftBackward(batch, n / 5);
        const b = await oe.sftBackward(batch, n / 5);
        worstLoss = Math.max(worstLoss, Math.abs(a.loss - b.loss) / Math.abs(a.loss));
        assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(a.loss), `step ${step} loss ${b.loss} vs ${a.loss}`);
      }
      const a = await te.optimizerStep(5e-3, settings);
      const b = await oe.optimizerStep(5e-3, settings);
      if (a.gradNorm > settings.maxGradNorm) clipped++;
      worstNorm = Math.max(worstNorm, Math.abs(a.gradNorm - b.gradNorm) / a.gradNorm);
      assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-5 * a.gradNorm, `step ${step} grad norm ${b.gradNorm} vs ${a.gradNorm}`);
    }
    assert.ok(clipped >= 2, "clipping was never exercised");
    // DPO continues from the SFT weights with its own optimiser state; references from the engines themselves.
    te.resetOptimizer();
    oe.resetOptimizer();
    const chosen = makeBatch(randomSequences(c, 4, 50), c.pad_token_id, 32);
    const rejected = makeBatch(randomSequences(c, 4, 51), c.pad_token_id, 32);
    const refC = await te.sequenceLogProbs(chosen);
    const refR = await te.sequenceLogProbs(rejected);
    const beta = 0.1;
    for (let step = 0; step < 3; step++) {
      const a = await te.dpoBackward(chosen, rejected, refC, refR, beta, 1);
      const b = await oe.dpoBackward(chosen, rejected, refC, refR, beta, 1);
      // The DPO loss is a function of differences of sequence log-probabilities (~−70 here): float32 rounding
      // of those sums (~1e-6 relative, as in the log-prob test) enters the loss scaled by beta.
      const tol = 1e-5 * Math.max(1, a.loss) + beta * 4e-7 * (Math.abs(a["logps/chosen"]) + Math.abs(a["logps/rejected"]));
      worstLoss = Math.max(worstLoss, Math.abs(a.loss - b.loss) / a.loss);
      assert.ok(Math.abs(a.loss - b.loss) < tol, `DPO step ${step} loss ${b.loss} vs ${a.loss}`);
      assert.ok(Math.abs(a["rewards/margins"] - b["rewards/margins"]) < tol, `DPO step ${step} margins ${b["rewards/margins"]} vs ${a["rewards/margins"]}`);
      // Adam's early steps move each weight by about ±lr whatever its gradient's size, so an entry near zero
      // whose float32 sign differs between the engines moves apart by 2·lr; rates of 5e-3 and 1e-3 keep the two
      // trajectories within float32 noise for these 7 steps (at 3e-2 they drift apart by ~1e-4 in log-probs).
      const na = await te.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
      const nb = await oe.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
      worstNorm = Math.max(worstNorm, Math.abs(na.gradNorm - nb.gradNorm) / na.gradNorm);
      assert.ok(Math.abs(na.gradNorm - nb.gradNorm) < 1e-5 * na.gradNorm, `DPO step ${step} grad norm ${nb.gradNorm} vs ${na.gradNorm}`);
    }
    // The weights themselves stay close after 7 Adam steps (per-tensor relative to the tensor's norm).
    const wa = await te.getWeights();
    const wb = await oe.getWeights();
    let worstWeight = 0;
    for (const [name, x] of wa) worstWeight = Math.max(worstWeight, relError(wb.get(name)!.data, x.data));
    assert.ok(worstWeight < 1e-5, `weights drifted: ${worstWeight}`);
    t.diagnostic(`max relative loss difference ${worstLoss.toExponential(2)}, grad norm ${worstNorm.toExponential(2)}, weights after 7 steps ${worstWeight.toExponential(2)}`);
    te.dispose();
    oe.dispose();
  });

  test(`${kind}: per-token and per-sequence log-probabilities match TF.js within 1e-4`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 11);
    const te = new TfEngine(tf, c, w, "cpu");
    const oe = new OrtEngine(c, w, { threads: 1 });
    const batch = makeBatch(randomSequences(c, 6, 12, 3, 40), c.pad_token_id, 48);
    const tt = tfTensors(tf, batch);
    const want = tf.tidy(() => tokenLogProbs(tf, te.model.forward(tt.inputs).logits, tt.targets).dataSync() as Float32Array);
    const got = await oe.tokenLogProbs(batch);
    const tokenErr = maxAbsDiff(got, want);
    assert.ok(tokenErr < 1e-4, `token log-probs differ by ${tokenErr}`);
    const seqErr = maxAbsDiff(await oe.sequenceLogProbs(batch), await te.sequenceLogProbs(batch));
    assert.ok(seqErr < 1e-4, `sequence log-probs differ by ${seqErr}`);
    t.diagnostic(`max |Δ| token ${tokenErr.toExponential(2)}, sequence ${seqErr.toExponential(2)}`);
    tf.dispose(Object.values(tt));
    te.dispose();
    oe.dispose();
  });

  test(`${kind}: greedy decoding with left-padded prompts gives the same tokens and logits as TF.js`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 13);
    const te = new TfEngine(tf, c, w, "cpu");
    const oe = new OrtEngine(c, w, { threads: 1 });
    const prompts = [[1, 5, 6, 7, 8, 9, 10], [1, 9, 3], [1, 4], [1, 20, 21, 22, 23]];
    const V = c.vocab_size;
    const argmax = (l: Float32Array): number[] =>
      prompts.map((_, r) => {
        let best = 0;
        for (let i = 1; i < V; i++) if (l[r * V + i]! > l[r * V + best]!) best = i;
        return best;
      });
    const a = await te.startDecoding(prompts);
    const b = await oe.startDecoding(prompts);
    let la = a.logits;
    let lb = b.logits;
    let worst = 0;
    const tokens: number[][] = [];
    for (let s = 0; s < 16; s++) {
      worst = Math.max(worst, maxAbsDiff(la, lb));
      const ta = argmax(la);
      assert.deepEqual(argmax(lb), ta, `step ${s}`);
      tokens.push(ta);
      la = await a.session.step(ta);
      lb = await b.session.step(ta);
    }
    assert.ok(worst < 1e-4, `logits differ by ${worst}`);
    assert.ok(new Set(tokens.flat()).size > 3, "degenerate decode: the comparison would prove little");
    t.diagnostic(`max |Δ logit| over 16 steps ${worst.toExponential(2)}`);
    a.session.dispose();
    b.session.dispose();
    await assert.rejects(b.session.step(tokens[0]!), /disposed/);
    te.dispose();
    oe.dispose();
  });

  test(`${kind}: greedy decoding across the KV cache's growth to max_position_embeddings matches TF.js, weights embedded or fed`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 29);
    const te = new TfEngine(tf, c, w, "cpu");
    // Prompts of 30, 3 and 29 tokens: the prompt pass fills 30 of the first bucket's 32 slots, decoding grows the
    // cache past 32 and ends at max_position_embeddings (64) with the last step.
    const rng = new Rng(30);
    const prompts = [30, 3, 29].map((n) => [1, ...Array.from({ length: n - 1 }, () => rng.int(3, c.vocab_size - 1))]);
    const steps = c.max_position_embeddings - 30 + 1;
    for (const limit of [undefined, 0]) {
      const oe = new OrtEngine(c, w, { threads: 1 }, { decodeEmbedLimitBytes: limit });
      const { worst, tokens } = await greedyParity(te, oe, prompts, steps);
      assert.ok(worst < 1e-4, `logits differ by ${worst} (${limit === 0 ? "fed" : "embedded"} weights)`);
      assert.ok(new Set(tokens.flat()).size > 3, "degenerate decode: the comparison would prove little");
      t.diagnostic(`${limit === 0 ? "fed" : "embedded"} weights: max |Δ logit| over ${steps} steps ${worst.toExponential(2)}`);
      oe.dispose();
    }
    te.dispose();
  });
}

test("decoding follows the weights: one session per weight version, rebuilt after setWeights and optimizer steps", async () => {
  const c = CONFIGS["tied"]!;
  const prompts = [[1, 5, 6, 7], [1, 9]];
  const wa = randomWeights(c, 31);
  const wb = randomWeights(c, 32);
  /** Logits of the prompt pass and of one step with tokens 3, 4. */
  const decode = async (e: OrtEngine): Promise<Float32Array[]> => {
    const { session, logits } = await e.startDecoding(prompts);
    const next = await session.step([3, 4]);
    session.dispose();
    return [logits, next];
  };
  const fresh = async (w: HostWeights): Promise<Float32Array[]> => {
    const e = new OrtEngine(c, w, { threads: 1 });
    const out = await decode(e);
    e.dispose();
    return out;
  };
  const [refA, refB] = [await fresh(wa), await fresh(wb)];
  const oe = new OrtEngine(c, wa, { threads: 1 });
  assert.deepEqual(await decode(oe), refA);
  assert.deepEqual(await decode(oe), refA);
  assert.equal(oe.decodeSessionsBuilt, 1, "the decoding session is shared while the weights stay");
  // A decode begun before the weights change keeps its weights to the end.
  const before = await oe.startDecoding(prompts);
  oe.setWeights(wb);
  assert.deepEqual(await decode(oe), refB);
  assert.equal(oe.decodeSessionsBuilt, 2);
  assert.deepEqual(await before.session.step([3, 4]), refA[1]);
  before.session.dispose();
  // An optimizer step changes the weights too.
  await oe.sftBackward(makeBatch(randomSequences(c, 3, 33), c.pad_token_id, 32), 1);
  await oe.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
  assert.deepEqual(await decode(oe), await fresh(await oe.getWeights()));
  assert.equal(oe.decodeSessionsBuilt, 3);
  oe.dispose();
  // A model too large to embed: one session, fed the weights current when each decode starts.
  const fed = new OrtEngine(c, wa, { threads: 1 }, { decodeEmbedLimitBytes: 0 });
  const fedBefore = await fed.startDecoding(prompts);
  const close = (x: Float32Array[], y: Float32Array[]): void => x.forEach((a, i) => assert.ok(maxAbsDiff(a, y[i]!) < 1e-5));
  close([fedBefore.logits], [refA[0]!]);
  fed.setWeights(wb);
  close(await decode(fed), refB);
  close([await fedBefore.session.step([3, 4])], [refA[1]!]);
  fedBefore.session.dispose();
  assert.equal(fed.decodeSessionsBuilt, 1);
  fed.dispose();
});

test("a run can switch engines: weights trained by ORT load into TF.js and give the same log-probabilities", async () => {
  const tf = await cpuTf();
  const c = CONFIGS["tied"]!;
  const oe = await createEngine({ engine: "onnxruntime", tfBackend: "cpu" }, c, randomWeights(c, 17));
  assert.equal(oe.name, "onnxruntime");
  assert.match(oe.device, /^cpu \(\d+ threads?\)$/);
  const batch = makeBatch(randomSequences(c, 4, 18), c.pad_token_id, 32);
  for (let i = 0; i < 2; i++) {
    await oe.sftBackward(batch, 1);
    await oe.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
  }
  const trained = await oe.getWeights();
  const te = new TfEngine(tf, c, trained, "cpu");
  const err = maxAbsDiff(await oe.sequenceLogProbs(batch), await te.sequenceLogProbs(batch));
  assert.ok(err < 1e-4, `log-probs differ by ${err} after the switch`);
  // And back: TF weights into the ORT engine replace its own.
  oe.setWeights(randomWeights(c, 19));
  te.setWeights(randomWeights(c, 19));
  assert.ok(maxAbsDiff(await oe.sequenceLogProbs(batch), await te.sequenceLogProbs(batch)) < 1e-4);
  // getWeights hands out copies: changing them does not touch the engine.
  const copy = await oe.getWeights();
  copy.get("model.norm.weight")!.data.fill(0);
  assert.notEqual((await oe.getWeights()).get("model.norm.weight")!.data[0], 0);
  te.dispose();
  oe.dispose();
});

test("a non-finite gradient stops the step without applying it", async () => {
  const c = CONFIGS["untied"]!;
  const w = randomWeights(c, 23);
  w.get("model.layers.0.mlp.up_proj.weight")!.data[5] = Number.NaN;
  const oe = new OrtEngine(c, w, { threads: 1 });
  const before = await oe.getWeights();
  const { loss } = await oe.sftBackward(makeBatch(randomSequences(c, 2, 24), c.pad_token_id, 32), 1);
  assert.ok(Number.isNaN(loss));
  await assert.rejects(oe.optimizerStep(1e-2, DEFAULT_OPTIMIZER), /gradient norm is NaN: the step was not applied/);
  const after = await oe.getWeights();
  for (const [name, x] of before) assert.deepEqual(after.get(name)!.data, x.data, name);
  await assert.rejects(oe.optimizerStep(1e-2, DEFAULT_OPTIMIZER), /without accumulated gradients/);
  oe.dispose();
});
