import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuTf } from "../../helpers/tf";
import { dpoMetricsHost } from "../../../src/core/engine/dpoLoss";
import { dpoLoss } from "../../../src/core/engine/tf/tfLosses";
import { cosineWithWarmup } from "../../../src/core/train/schedule";

// Hand-computed: beta 0.1; pair 1: chosen ratio -10-(-12)=2, rejected ratio -20-(-18)=-2 → logits 0.1*4=0.4,
// loss = log(1+e^-0.4) = 0.5130152523999526; pair 2: chosen ratio -1, rejected 1 → logits -0.2,
// loss = log(1+e^0.2) = 0.7981388693815918. Mean 0.6555770608907722.
const pc = [-10, -5], pr = [-20, -7], rc = [-12, -4], rr = [-18, -8];

test("DPO sigmoid loss and TRL metrics on hand-computed inputs", async () => {
  const m = dpoMetricsHost(pc, pr, rc, rr, 0.1);
  assert.ok(Math.abs(m.loss - 0.6555770608907722) < 1e-12);
  assert.ok(Math.abs(m["rewards/chosen"] - (0.2 + -0.1) / 2) < 1e-12);
  assert.ok(Math.abs(m["rewards/rejected"] - (-0.2 + 0.1) / 2) < 1e-12);
  assert.ok(Math.abs(m["rewards/margins"] - 0.1) < 1e-12);
  assert.equal(m["rewards/accuracies"], 0.5);
  assert.equal(m["logps/chosen"], -7.5);
  assert.equal(m["logps/rejected"], -13.5);
  const tf = await cpuTf();
  const t = dpoLoss(tf, tf.tensor1d(pc), tf.tensor1d(pr), tf.tensor1d(rc), tf.tensor1d(rr), 0.1);
  assert.ok(Math.abs(t.loss.dataSync()[0]! - 0.6555770608907722) < 1e-6);
  assert.deepEqual(Array.from(t.chosenRewards.dataSync()).map((x) => Math.round(x * 1e6) / 1e6), [0.2, -0.1]);
  // Gradient wrt policy chosen log-prob: -beta * sigmoid(-logit) / B.
  const g = tf.grad((x) => dpoLoss(tf, x, tf.tensor1d(pr), tf.tensor1d(rc), tf.tensor1d(rr), 0.1).loss)(tf.tensor1d(pc)).dataSync();
  const sig = (x: number): number => 1 / (1 + Math.exp(-x));
  assert.ok(Math.abs(g[0]! - (-0.1 * sig(-0.4)) / 2) < 1e-6 && Math.abs(g[1]! - (-0.1 * sig(0.2)) / 2) < 1e-6);
});

test("a huge margin gives a finite loss (no overflow)", () => {
  const m = dpoMetricsHost([0], [-1e5], [0], [0], 0.1);
  assert.ok(Number.isFinite(m.loss) && m.loss < 1e-30);
  const n = dpoMetricsHost([-1e5], [0], [0], [0], 0.1);
  assert.ok(Math.abs(n.loss - 1e4) < 1e-6);
});

test("cosine schedule with warm-up", () => {
  assert.equal(cosineWithWarmup(0, 100, 10, 1), 0.1);
  assert.equal(cosineWithWarmup(9, 100, 10, 1), 1);
  assert.equal(cosineWithWarmup(10, 100, 10, 1), 1);
  assert.ok(Math.abs(cosineWithWarmup(55, 100, 10, 1) - 0.5) < 1e-12);
  assert.ok(cosineWithWarmup(99, 100, 10, 1) < 0.001);
});
