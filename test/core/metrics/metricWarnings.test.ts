import { test } from "node:test";
import assert from "node:assert/strict";
import { roundWarnings, sortWarnings, stageWarnings, stepWindow, trend } from "../../../src/core/metrics/metricWarnings";
import { lttbIndices } from "../../../src/core/metrics/downsample";
import type { MetricWarning, RoundRow, StageSteps } from "../../../src/shared/dashboardProtocol";
import type { StepMetric, TrainStage } from "../../../src/shared/metricRecord";

/** A stage with steps 1…n for the given curves; totalSteps defaults to the longest curve. */
function stage(kind: TrainStage, curves: Partial<Record<StepMetric, number[]>>, totalSteps?: number, round = 2): StageSteps {
  const n = Math.max(...Object.values(curves).map((c) => c.length));
  const series: StageSteps["series"] = {};
  for (const [k, y] of Object.entries(curves) as Array<[StepMetric, number[]]>) series[k] = { x: y.map((_, i) => i + 1), y };
  return { round, stage: kind, totalSteps: totalSteps ?? n, recorded: n, lastStep: n, series, nonFinite: {} };
}

/** Deterministic noise in [-1, 1]: a fixed irrational rotation, so tests never flake. */
const noise = (i: number): number => 2 * ((i * 0.6180339887) % 1) - 1;
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i + 1));
const kinds = (ws: MetricWarning[]): string[] => ws.map((w) => w.kind);

test("the step window is 20 steps, or a third of a short stage but at least 8", () => {
  assert.equal(stepWindow(stage("dpo", { loss: range(150, () => 1) })), 20);
  assert.equal(stepWindow(stage("dpo", { loss: range(30, () => 1) })), 10);
  assert.equal(stepWindow(stage("dpo", { loss: range(4, () => 1) })), 8);
  assert.equal(stepWindow(stage("dpo", { loss: range(4, () => 1) }, 150)), 20, "a live stage is judged by its planned length");
});

test("a trend's t statistic: clear falls are significant, flat noise is not", () => {
  assert.ok(trend(range(40, (i) => i), range(40, (i) => -0.01 * i + 0.002 * noise(i))).t < -10);
  assert.ok(Math.abs(trend(range(40, (i) => i), range(40, (i) => -0.5 + 0.05 * noise(i))).t) < 2);
  assert.equal(trend([1, 2, 3], [3, 2, 1]).t, -Infinity);
  assert.equal(trend([1, 2], [2, 1]).t, 0, "two points are no trend");
});

test("rewards/chosen negative and falling fires, with run, round, stage and the number of steps", () => {
  // 60 DPO steps: chosen positive for 20, then negative and falling for 40.
  const chosen = range(60, (i) => (i <= 20 ? 0.01 : -0.005 * (i - 20) + 0.001 * noise(i)));
  const ws = stageWarnings("2026-11-25-a", stage("dpo", { "rewards/chosen": chosen }));
  assert.deepEqual(kinds(ws), ["chosen-falling"]);
  assert.equal(ws[0]!.text, "Run 2026-11-25-a, round 2, DPO: rewards/chosen has been negative and falling for 40 steps — the model is lowering the likelihood of correct answers too; consider a lower learning rate or adding an SFT term.");
  assert.deepEqual([ws[0]!.severity, ws[0]!.round, ws[0]!.stage], ["warning", 2, "dpo"]);
});

test("rewards/chosen stays silent when it is healthy, flat, briefly negative, or has recovered", () => {
  const silent = (chosen: number[], total?: number): void => assert.deepEqual(stageWarnings("r", stage("dpo", { "rewards/chosen": chosen }, total)), [], chosen.slice(-3).join(", "));
  silent(range(150, (i) => 0.001 * i + 0.01 * noise(i))); // rising
  silent(range(150, (i) => -0.3 + 0.05 * noise(i))); // negative but flat: noise, not a fall
  const drift = range(150, (i) => -0.3 - 0.00005 * i + 0.05 * noise(i));
  const t = trend(range(150, (i) => i), drift);
  assert.ok(t.slope < 0 && t.t > -2, `a drift within the noise (t = ${t.t})`);
  silent(drift); // a slope this small is not "falling"
  silent(range(150, (i) => (i <= 145 ? 0.01 : -0.01 * (i - 145)))); // falling for 5 steps only
  silent(range(150, (i) => (i < 149 ? -0.005 * i : 0.02))); // fell, but is positive again now
  silent(range(6, (i) => -0.01 * i), 150); // a live stage six steps in: too early to judge
});

test("reward accuracies stuck at 0 or at 1 fire; rising accuracies and a normal first step do not", () => {
  const zero = stageWarnings("r", stage("dpo", { "rewards/accuracies": range(30, () => 0) }));
  assert.deepEqual(kinds(zero), ["reward-accuracy-stuck"]);
  assert.match(zero[0]!.text, /^Run r, round 2, DPO: rewards\/accuracies has stayed at 0 for 30 steps — .*reversed or identical/);
  const one = stageWarnings("r", stage("dpo", { "rewards/accuracies": range(100, (i) => (i <= 75 ? Math.min(0.95, 0.02 * i) : 1)) }));
  assert.deepEqual(kinds(one), ["reward-accuracy-stuck"]);
  assert.match(one[0]!.text, /has been 1 for the last 25 steps — .*overfitting/);
  assert.notEqual(zero[0]!.id, one[0]!.id);

  const silent = (acc: number[]): void => assert.deepEqual(stageWarnings("r", stage("dpo", { "rewards/accuracies": acc })), [], acc.slice(-3).join(", "));
  silent(range(100, (i) => (i === 1 ? 0 : Math.min(0.9, 0.3 + 0.01 * i + 0.05 * noise(i))))); // step 1 is 0 by construction (policy = reference)
  silent(range(100, (i) => (i % 4 === 0 ? 1 : 0.75))); // often 1, never for long
  silent(range(100, (i) => (i <= 95 ? 0.8 : 1))); // 1 for the last 5 steps only
});

test("a loss at ≈0 fires for each training stage, with a stage-specific reason; a healthy loss does not", () => {
  const sft = stageWarnings("r", stage("sft", { loss: range(200, (i) => 2 * Math.exp(-i / 10)) }, undefined, 3));
  assert.deepEqual(kinds(sft), ["loss-zero"]);
  assert.match(sft[0]!.text, /^Run r, round 3, SFT: the loss is ≈0 \(\d\.\de-\d+ at step 200\) — the model has memorised its training data/);
  const dpo = stageWarnings("r", stage("dpo", { loss: range(50, (i) => (i < 40 ? 0.69 / i : 1e-4)) }));
  assert.deepEqual(kinds(dpo), ["loss-zero"]);
  assert.match(dpo[0]!.text, /DPO: the loss is ≈0 \(0\.00010 at step 50\) — the pairs are separated so far/);
  const warm = stageWarnings("r", stage("warmup", { loss: range(5, () => 0) }, undefined, 0));
  assert.match(warm[0]!.text, /^Run r, round 0, warm-up SFT: the loss is ≈0 \(0\.0 at step 5\)/);

  assert.deepEqual(stageWarnings("r", stage("sft", { loss: range(200, (i) => 0.3 + 2 * Math.exp(-i / 10)) })), []);
  assert.deepEqual(stageWarnings("r", stage("sft", { loss: range(200, (i) => (i === 100 ? 0 : 0.5)) })), [], "one zero step is not a zero loss");
  assert.deepEqual(stageWarnings("r", stage("sft", { loss: range(200, (i) => (i === 200 ? 0 : 0.5)) })), [], "nor is a last step at zero");
});

test("values that were not numbers fire an error naming the metrics and the first step", () => {
  const s = stage("dpo", { loss: range(10, () => 0.5) });
  assert.deepEqual(stageWarnings("r", s), []);
  s.nonFinite = { loss: { count: 3, firstStep: 7 }, grad_norm: { count: 1, firstStep: 9 } };
  const ws = stageWarnings("r", s);
  assert.deepEqual(kinds(ws), ["non-finite"]);
  assert.equal(ws[0]!.severity, "error");
  assert.match(ws[0]!.text, /^Run r, round 2, DPO: loss and grad_norm were not a finite number \(NaN or infinite\) at 3 steps, first at step 7 — training has diverged/);
});

function row(round: number, values: Partial<RoundRow>): RoundRow {
  return {
    round, devAccuracy: null, testAccuracy: null, devPassAtK: null, testPassAtK: null, k: null, testQuestions: null, correctSamples: null, samples: null, positives: null, negatives: null,
    pairs: null, pseudoLabels: null, distinctPerQuestion: null, rewardAccuracy: null, rewardMargin: null, tokensPerSecond: null, wallMs: null, evaluated: false, ...values,
  };
}

test("a DPO-ST round that built no pairs fires; plain self-training, the warm-up and rounds with pairs do not", () => {
  const ws = roundWarnings("run", "dpo-st", [row(0, { pairs: null }), row(1, { pairs: 12 }), row(2, { pairs: 0 })]);
  assert.deepEqual(ws.map((w) => `${w.kind}:${w.round}:${w.stage}`), ["no-pairs:2:dpo"]);
  assert.match(ws[0]!.text, /^Run run, round 2, DPO: no preference pairs were built, so the DPO step kept the SFT model/);
  assert.deepEqual(roundWarnings("run", "st", [row(1, { pairs: 0 })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(0, { pairs: 0 })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { pairs: null })]), [], "a round whose pairs stage has not run yet");
});

test("no sample right and no pseudo-label fires as the first warning; a right sample, a kept pseudo-label or nothing sampled yet do not", () => {
  const ws = roundWarnings("run", "dpo-st", [row(0, {}), row(1, { samples: 320, correctSamples: 0, pairs: 120, pseudoLabels: 0 })]);
  assert.deepEqual(ws.map((w) => `${w.kind}:${w.round}:${w.severity}`), ["no-right-samples:1:error"]);
  assert.match(ws[0]!.text, /^Run run, round 1: 0 of 320 samples were right and there are 0 pseudo-labels — the model cannot start/);
  assert.match(ws[0]!.text, /Lower sampling\.temperature, check the prompt format \(model\.promptFormat\).*warm up longer/);
  assert.equal(roundWarnings("run", "st", [row(1, { samples: 320, correctSamples: 0, pseudoLabels: 0 })]).length, 1, "plain self-training too");
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { samples: 320, correctSamples: 1, pairs: 120, pseudoLabels: 1 })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { samples: 320, correctSamples: 0, pairs: 120, pseudoLabels: 4 })]), [], "a person marked samples right");
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { samples: null, correctSamples: null })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { samples: 320, correctSamples: null, pairs: 120 })]), [], "an older manifest without the count");
  // It leads even an error: every later number follows from it.
  const sorted = sortWarnings([{ ...ws[0]!, round: 1 }, { id: "nf", kind: "non-finite", severity: "error", runId: "run", round: 2, stage: "dpo", text: "" }]);
  assert.deepEqual(sorted.map((w) => w.kind), ["no-right-samples", "non-finite"]);
});

test("test accuracy falling by more than evaluation noise fires; drops within noise do not", () => {
  const drop = roundWarnings("run", "dpo-st", [row(1, { testAccuracy: 0.4, testQuestions: 500 }), row(2, { testAccuracy: 0.3, testQuestions: 500 })]);
  assert.deepEqual(drop.map((w) => `${w.kind}:${w.round}`), ["accuracy-drop:2"]);
  assert.equal(drop[0]!.text, "Run run, round 2: test accuracy fell from 40.0% in round 1 to 30.0%, more than evaluation noise on 500 questions explains — look at this round's pseudo-labels and pairs before starting the next one.");
  // 2 points on 500 questions, 17 points on 6 questions: both within noise.
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { testAccuracy: 0.4, testQuestions: 500 }), row(2, { testAccuracy: 0.38, testQuestions: 500 })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { testAccuracy: 0.5, testQuestions: 6 }), row(2, { testAccuracy: 0.333, testQuestions: 6 })]), []);
  // Without the number of questions, more than 5 points.
  assert.equal(roundWarnings("run", "dpo-st", [row(1, { testAccuracy: 0.4 }), row(2, { testAccuracy: 0.34 })]).length, 1);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { testAccuracy: 0.4 }), row(2, { testAccuracy: 0.37 })]), []);
  // Rising, and rounds not evaluated in between, are fine; the comparison skips to the last evaluated round.
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(0, { testAccuracy: 0.2 }), row(1, {}), row(2, { testAccuracy: 0.3 })]), []);
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(2, { testAccuracy: 0.2 }), row(0, { testAccuracy: 0.3 })]).map((w) => w.round), [2], "rows in any order");
});

test("warnings sort errors first, then the newest round first", () => {
  const w = (kind: MetricWarning["kind"], severity: MetricWarning["severity"], round: number | null): MetricWarning => ({ id: `${kind}:${round}`, kind, severity, runId: "r", round, stage: null, text: "" });
  const sorted = sortWarnings([w("loss-zero", "warning", 1), w("no-pairs", "warning", 3), w("non-finite", "error", 0), w("unreadable", "warning", null)]);
  assert.deepEqual(sorted.map((x) => x.id), ["non-finite:0", "no-pairs:3", "loss-zero:1", "unreadable:null"]);
});

test("LTTB keeps the first and last points and the extremes, and returns everything when under budget", () => {
  const x = range(1000, (i) => i);
  const y = range(1000, (i) => (i === 500 ? 100 : i === 700 ? -100 : Math.sin(i / 50)));
  const keep = lttbIndices(x, y, 50);
  assert.equal(keep.length, 50);
  assert.deepEqual([keep[0], keep[49]], [0, 999]);
  assert.ok(keep.includes(499) && keep.includes(699), "the spike and the dip are kept");
  assert.ok(keep.every((k, i) => i === 0 || k > keep[i - 1]!));
  assert.deepEqual(lttbIndices([1, 2, 3], [1, 2, 3], 10), [0, 1, 2]);
  assert.deepEqual(lttbIndices([1, 2, 3], [1, 2, 3], 2), [0, 2]);
  assert.deepEqual(lttbIndices([], [], 2), []);
});

test("test pass@k falling by more than evaluation noise fires too (9.0% → 2.5% on 200 questions), with k in the text", () => {
  const ws = roundWarnings("run", "dpo-st", [row(1, { testPassAtK: 0.09, k: 4, testQuestions: 200 }), row(2, { testPassAtK: 0.025, k: 4, testQuestions: 200 })]);
  assert.deepEqual(ws.map((w) => `${w.kind}:${w.round}:${w.id}`), ["accuracy-drop:2:accuracy-drop:run:2::testPassAtK"]);
  assert.equal(ws[0]!.text, "Run run, round 2: test pass@4 fell from 9.0% in round 1 to 2.5%, more than evaluation noise on 200 questions explains — look at this round's pseudo-labels and pairs before starting the next one.");
  assert.deepEqual(roundWarnings("run", "dpo-st", [row(1, { testPassAtK: 0.09, testQuestions: 200 }), row(2, { testPassAtK: 0.08, testQuestions: 200 })]), [], "within noise");
});
