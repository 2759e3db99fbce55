import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RunStore } from "../../../src/core/store/runStore";
import { selftrainDir } from "../../../src/core/selftrain/workspace";
import { dashboardState, readDashboard, readRunMetrics, MAX_POINTS, type RunCache } from "../../../src/core/metrics/dashboardData";
import { findRunningStage, mergeLiveRecords } from "../../../src/core/metrics/liveMetrics";
import type { RunMode, StageName } from "../../../src/shared/runTypes";
import type { RunStatus } from "../../../src/shared/dashboardProtocol";
import { tempDir } from "../../helpers/paths";

const IDLE: RunStatus = { running: false, runId: null, round: null, stage: null, step: null, totalSteps: null };

/** A step record as the runner writes it (trainRecord): the engine's StepLog with the DPO metrics flattened. */
function trainRecord(round: number, stage: "warmup" | "dpo" | "sft", step: number, totalSteps: number, values: Record<string, number | null>): Record<string, unknown> {
  return {
    kind: "train", round, stage, engine: "onnxruntime", device: "cpu", step, totalSteps, learning_rate: 1e-3 * (1 - step / (totalSteps + 1)),
    grad_norm: 1.5, tokens: 900, tokens_per_second: 24_000, elapsed_ms: step * 40, ...values,
  };
}

function dpoValues(step: number): Record<string, number> {
  return {
    loss: 0.69 - 0.01 * step, "rewards/chosen": 0.002 * step, "rewards/rejected": -0.02 * step, "rewards/margins": 0.022 * step,
    "rewards/accuracies": Math.min(0.9, 0.04 * step), "logps/chosen": -40, "logps/rejected": -55,
  };
}

function roundSummary(round: number, mode: RunMode, values: Record<string, number | null>): Record<string, unknown> {
  // The runner writes engine "tfjs" here whatever trained; the step records are the ones to trust.
  return { kind: "round", round, mode, time: "2026-11-25T10:00:00.000Z", engine: "tfjs", device: "cpu", k: 5, ...values };
}

async function stageDone(store: RunStore, round: number, stage: StageName, counts: Record<string, number> = {}): Promise<void> {
  await store.setStage(round, stage, { state: "running" });
  await store.setStage(round, stage, { state: "done", counts });
}

function writeMetrics(store: RunStore, round: number, records: unknown[]): void {
  mkdirSync(store.roundDir(round), { recursive: true });
  appendFileSync(store.path(round, "metrics.jsonl"), records.map((r) => JSON.stringify(r) + "\n").join(""));
}

const steps = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** A DPO-ST run with a warm-up round 0 and a finished round 1, written the way the runner writes them. */
async function finishedRun(ws: string, runId = "2026-11-25-a"): Promise<RunStore> {
  const store = await RunStore.create(selftrainDir(ws), { runId, mode: "dpo-st" });
  await stageDone(store, 0, "warmup", { steps: 30 });
  await stageDone(store, 0, "eval", { devAccuracy: 0.2, testAccuracy: 0.25, testQuestions: 400 });
  writeMetrics(store, 0, [
    ...steps(30).map((s) => trainRecord(0, "warmup", s, 30, { loss: 3 / s })),
    roundSummary(0, "dpo-st", { "accuracy/dev": 0.2, "accuracy/test": 0.25, "pass@k/dev": 0.4, "pass@k/test": 0.45, samples: 0, positives: 0, negatives: 0, pairs: 0, pseudoLabels: 0, distinctPerQuestion: 0, rewardAccuracy: null, rewardMargin: null, tokensPerSecond: 20_000, wallMs: 5_000 }),
  ]);
  await stageDone(store, 1, "sample-dpo", { samples: 500, correct: 180 });
  await stageDone(store, 1, "pairs", { pairs: 120, positives: 210, negatives: 290 });
  await stageDone(store, 1, "dpo", { steps: 20 });
  await stageDone(store, 1, "sample-sft", { samples: 300, correct: 200 });
  await stageDone(store, 1, "pseudo-labels", { kept: 150, questions: 100 });
  await stageDone(store, 1, "sft", { steps: 25 });
  await stageDone(store, 1, "eval", { devAccuracy: 0.24, testAccuracy: 0.3, testQuestions: 400 });
  writeMetrics(store, 1, [
    ...steps(20).map((s) => trainRecord(1, "dpo", s, 20, dpoValues(s))),
    ...steps(25).map((s) => trainRecord(1, "sft", s, 25, { loss: 2 / s + 0.2 })),
    roundSummary(1, "dpo-st", { "accuracy/dev": 0.24, "accuracy/test": 0.3, "pass@k/dev": 0.5, "pass@k/test": 0.55, samples: 800, positives: 210, negatives: 290, pairs: 120, pseudoLabels: 150, distinctPerQuestion: 1.5, rewardAccuracy: 0.85, rewardMargin: 0.4, tokensPerSecond: 24_800, wallMs: 61_000 }),
  ]);
  return store;
}

test("a run's rounds table and per-stage step curves are read from its files", async (t) => {
  const ws = tempDir(t);
  await finishedRun(ws);
  const { runs, problems } = await readDashboard(ws);
  assert.deepEqual(problems, []);
  assert.equal(runs.length, 1);
  const run = runs[0]!;
  assert.equal(run.runId, "2026-11-25-a");
  assert.equal(run.mode, "dpo-st");
  // The step records name the engine that trained; the summary's "tfjs" is not believed.
  assert.deepEqual([run.engine, run.device], ["onnxruntime", "cpu"]);

  assert.deepEqual(run.rounds.map((r) => r.round), [0, 1]);
  const [r0, r1] = run.rounds;
  assert.deepEqual(r0, {
    round: 0, devAccuracy: 0.2, testAccuracy: 0.25, devPassAtK: 0.4, testPassAtK: 0.45, k: 5, testQuestions: 400, correctSamples: null,
    // The warm-up samples nothing and builds no pairs: empty cells, not zeros.
    samples: null, positives: null, negatives: null, pairs: null, pseudoLabels: null, distinctPerQuestion: null, rewardAccuracy: null, rewardMargin: null,
    tokensPerSecond: 20_000, wallMs: 5_000, evaluated: true,
  });
  assert.deepEqual(r1, {
    round: 1, devAccuracy: 0.24, testAccuracy: 0.3, devPassAtK: 0.5, testPassAtK: 0.55, k: 5, testQuestions: 400, correctSamples: 380, samples: 800, positives: 210, negatives: 290,
    pairs: 120, pseudoLabels: 150, distinctPerQuestion: 1.5, rewardAccuracy: 0.85, rewardMargin: 0.4, tokensPerSecond: 24_800, wallMs: 61_000, evaluated: true,
  });

  assert.deepEqual(run.steps.map((s) => `${s.round}:${s.stage}:${s.recorded}/${s.totalSteps}`), ["0:warmup:30/30", "1:dpo:20/20", "1:sft:25/25"]);
  const dpo = run.steps[1]!;
  assert.deepEqual(dpo.series["rewards/chosen"], { x: steps(20), y: steps(20).map((s) => 0.002 * s) });
  assert.deepEqual(dpo.series["rewards/margins"]!.y.slice(0, 3), [0.022, 0.044, 0.066]);
  assert.deepEqual(dpo.series["loss"]!.x, steps(20));
  assert.equal(dpo.series["learning_rate"]!.y.length, 20);
  assert.deepEqual(Object.keys(run.steps[2]!.series).sort(), ["grad_norm", "learning_rate", "loss", "tokensPerSecond"]);
  assert.deepEqual(run.steps[0]!.series["loss"]!.y.slice(0, 2), [3, 1.5]);
  assert.deepEqual(run.warnings, [], "healthy curves raise no warning");
});

test("a round still running shows the counts its finished stages put in the manifest", async (t) => {
  const ws = tempDir(t);
  const store = await finishedRun(ws);
  await stageDone(store, 2, "sample-dpo", { samples: 500 });
  await stageDone(store, 2, "pairs", { pairs: 0, positives: 12, negatives: 0 });
  await store.setStage(2, "dpo", { state: "running" });
  const run = await readRunMetrics(selftrainDir(ws), store.runId);
  const r2 = run.rounds.find((r) => r.round === 2)!;
  assert.equal(r2.evaluated, false);
  assert.deepEqual([r2.samples, r2.pairs, r2.positives, r2.negatives, r2.testAccuracy, r2.pseudoLabels, r2.tokensPerSecond], [500, 0, 12, 0, null, null, null]);
  // No pairs in a DPO-ST round: the warning is there before the round even ends.
  assert.deepEqual(run.warnings.map((w) => `${w.kind}:${w.round}`), ["no-pairs:2"]);
  assert.match(run.warnings[0]!.text, /^Run 2026-11-25-a, round 2, DPO: no preference pairs were built/);
});

test("a round whose samples are all wrong, with no pseudo-labels, warns first that the model cannot start", async (t) => {
  const ws = tempDir(t);
  const store = await finishedRun(ws);
  await stageDone(store, 2, "sample-dpo", { samples: 160, correct: 0 });
  // Gold ≻ sample pairs are still built, so "no pairs" does not fire: only this rule sees that nothing was right.
  await stageDone(store, 2, "pairs", { pairs: 120, positives: 40, negatives: 160 });
  await stageDone(store, 2, "dpo", { steps: 20 });
  writeMetrics(store, 2, steps(20).map((s) => trainRecord(2, "dpo", s, 20, { loss: 0, "rewards/chosen": 0.1 })));
  const early = await readRunMetrics(selftrainDir(ws), store.runId);
  assert.equal(early.warnings[0]!.kind, "no-right-samples", "said while the round runs, before any pseudo-label");
  assert.match(early.warnings[0]!.text, /^Run 2026-11-25-a, round 2: 0 of 160 samples were right — the model cannot start/);
  await stageDone(store, 2, "sample-sft", { samples: 160, correct: 0 });
  await stageDone(store, 2, "pseudo-labels", { kept: 0, questions: 0 });
  const run = await readRunMetrics(selftrainDir(ws), store.runId);
  assert.deepEqual(run.rounds.find((r) => r.round === 2)!.correctSamples, 0);
  const first = run.warnings[0]!;
  assert.deepEqual([first.kind, first.severity, first.round], ["no-right-samples", "error", 2]);
  assert.ok(run.warnings.length > 1, "the loss at zero is warned about too, after it");
  assert.equal(first.text, "Run 2026-11-25-a, round 2: 0 of 320 samples were right and there are 0 pseudo-labels — the model cannot start: none of its rationales reaches the gold answer, so self-training has nothing of its own to learn from. Lower sampling.temperature, check the prompt format (model.promptFormat) against the one the model learnt, or warm up longer (warmup.steps or warmup.epochs).");
});

test("plain self-training rows have no pair columns, and both modes are read side by side", async (t) => {
  const ws = tempDir(t);
  await finishedRun(ws, "2026-11-25-a");
  const st = await RunStore.create(selftrainDir(ws), { runId: "2026-11-25-b", mode: "st" });
  await stageDone(st, 1, "sample-sft", { samples: 300 });
  await stageDone(st, 1, "pseudo-labels", { kept: 90, questions: 60 });
  await stageDone(st, 1, "sft", { steps: 25 });
  const { runs } = await readDashboard(ws);
  assert.deepEqual(runs.map((r) => `${r.runId}:${r.mode}`), ["2026-11-25-a:dpo-st", "2026-11-25-b:st"]);
  const row = runs[1]!.rounds[0]!;
  assert.deepEqual([row.round, row.pairs, row.positives, row.rewardAccuracy, row.pseudoLabels, row.distinctPerQuestion, row.samples], [1, null, null, null, 90, 1.5, 300]);
  assert.deepEqual(runs[1]!.warnings, [], "no pairs is not a warning in plain self-training");

  // The webview gets every run's table and the selected run's curves only (the newest by default).
  const state = dashboardState({ runs, problems: [] }, null, IDLE);
  assert.equal(state.selected?.runId, "2026-11-25-b");
  assert.equal(dashboardState({ runs, problems: [] }, "2026-11-25-a", IDLE).selected?.runId, "2026-11-25-a");
  assert.equal(dashboardState({ runs, problems: [] }, "gone", IDLE).selected?.runId, "2026-11-25-b");
  assert.deepEqual(state.runs.map((r) => Object.keys(r).includes("steps")), [false, false]);
  assert.equal(dashboardState({ runs: [], problems: ["x"] }, null, IDLE).selected, null);
});

test("with a cache, a run is parsed again only when its files change, and what the caller changes does not leak into it", async (t) => {
  const ws = tempDir(t);
  const store = await finishedRun(ws, "a");
  await finishedRun(ws, "b");
  const cache: RunCache = new Map();
  const first = await readDashboard(ws, MAX_POINTS, cache);
  assert.deepEqual([...cache.keys()], ["a", "b"]);
  const cachedA = cache.get("a")!.run;
  // The caller merges live records into its model; the next read must not see them.
  mergeLiveRecords(first.runs[0]!, [trainRecord(2, "dpo", 1, 10, dpoValues(1))]);
  const second = await readDashboard(ws, MAX_POINTS, cache);
  assert.equal(cache.get("a")!.run, cachedA, "unchanged files: the cached run is used");
  assert.deepEqual(second, await readDashboard(ws), "and it is what reading the files gives");
  assert.equal(second.runs[0]!.steps.some((s) => s.round === 2), false);
  mergeLiveRecords(second.runs[0]!, [trainRecord(2, "dpo", 1, 10, dpoValues(1))]);
  assert.equal((await readDashboard(ws, MAX_POINTS, cache)).runs[0]!.steps.some((s) => s.round === 2), false, "a cache hit is a copy too");

  writeMetrics(store, 1, [trainRecord(1, "sft", 26, 26, { loss: 0.3 })]);
  const third = await readDashboard(ws, MAX_POINTS, cache);
  assert.notEqual(cache.get("a")!.run, cachedA, "a changed metrics file is read again");
  assert.equal(third.runs[0]!.steps.find((s) => s.round === 1 && s.stage === "sft")!.recorded, 26);
  await store.setStage(3, "sample-dpo", { state: "running" });
  assert.ok((await readDashboard(ws, MAX_POINTS, cache)).runs[0]!.rounds.some((r) => r.round === 3), "so is a changed manifest");
});

test("long curves are downsampled to MAX_POINTS, keeping the first and last step and a spike; warnings see every step", async (t) => {
  const ws = tempDir(t);
  const store = await RunStore.create(selftrainDir(ws), { runId: "long", mode: "dpo-st" });
  await stageDone(store, 0, "warmup");
  const n = 5_000;
  writeMetrics(store, 0, steps(n).map((s) => trainRecord(0, "warmup", s, n, { loss: s === 2_500 ? 9 : 5 / Math.sqrt(s), grad_norm: s === 4_321 ? null : 1 })));
  const run = await readRunMetrics(selftrainDir(ws), "long");
  const s = run.steps[0]!;
  assert.equal(s.recorded, n);
  assert.equal(s.lastStep, n);
  const loss = s.series["loss"]!;
  assert.equal(loss.x.length, MAX_POINTS);
  assert.equal(loss.y.length, MAX_POINTS);
  assert.equal(loss.x[0], 1);
  assert.equal(loss.x[loss.x.length - 1], n);
  assert.ok(loss.x.includes(2_500), "the spike survives downsampling");
  assert.ok(loss.x.every((x, i) => i === 0 || x > loss.x[i - 1]!), "steps stay in order");
  assert.ok(loss.y.every((y, i) => y === (loss.x[i] === 2_500 ? 9 : 5 / Math.sqrt(loss.x[i]!))), "kept points are real points");
  // The one bad grad_norm was among the steps dropped from the chart, and is still reported.
  assert.deepEqual(s.nonFinite, { grad_norm: { count: 1, firstStep: 4_321 } });
  assert.deepEqual(run.warnings.map((w) => `${w.kind}:${w.severity}`), ["non-finite:error"]);
  assert.match(run.warnings[0]!.text, /^Run long, round 0, warm-up SFT: grad_norm was not a finite number \(NaN or infinite\) at 1 step, first at step 4321/);
});

test("warnings are judged on every step, not on the downsampled curve the chart gets", async (t) => {
  const ws = tempDir(t);
  const store = await RunStore.create(selftrainDir(ws), { runId: "tiny", mode: "dpo-st" });
  await stageDone(store, 1, "sft");
  // The loss reaches zero over the last 10 of 100 steps; three points of it cannot show that.
  writeMetrics(store, 1, steps(100).map((s) => trainRecord(1, "sft", s, 100, { loss: s > 90 ? 0 : 1 })));
  const run = await readRunMetrics(selftrainDir(ws), "tiny", 3);
  assert.equal(run.steps[0]!.series["loss"]!.x.length, 3);
  assert.deepEqual(run.warnings.map((w) => `${w.kind}:${w.round}:${w.stage}`), ["loss-zero:1:sft"]);
});

test("bad lines are skipped with a warning naming the line; NaN written by Python or as null counts as not finite", async (t) => {
  const ws = tempDir(t);
  const store = await RunStore.create(selftrainDir(ws), { runId: "bad", mode: "dpo-st" });
  await stageDone(store, 1, "dpo");
  const file = store.path(1, "metrics.jsonl");
  mkdirSync(store.roundDir(1), { recursive: true });
  writeFileSync(file, [
    JSON.stringify(trainRecord(1, "dpo", 1, 4, dpoValues(1))),
    "{not json",
    JSON.stringify(trainRecord(1, "dpo", 2, 4, dpoValues(2))).replace(/"rewards\/margins":[-0-9.e]+/, '"rewards/margins":NaN'),
    JSON.stringify(trainRecord(1, "dpo", 3, 4, { ...dpoValues(3), loss: null })),
    JSON.stringify({ kind: "train", round: 1, stage: "dpo" }),
    JSON.stringify({ kind: "note", text: "ignored" }),
    JSON.stringify(trainRecord(1, "dpo", 4, 4, dpoValues(4))).slice(0, 40), // a torn tail (no newline): left out silently
  ].join("\n"));
  const run = await readRunMetrics(selftrainDir(ws), "bad");
  const dpo = run.steps[0]!;
  assert.equal(dpo.recorded, 3);
  assert.deepEqual(dpo.series["loss"]!.x, [1, 2]);
  assert.deepEqual(dpo.series["rewards/margins"]!.x, [1, 3]);
  assert.deepEqual(dpo.nonFinite, { "rewards/margins": { count: 1, firstStep: 2 }, loss: { count: 1, firstStep: 3 } });
  const kinds = run.warnings.map((w) => w.kind);
  assert.deepEqual(kinds, ["non-finite", "unreadable"]);
  assert.match(run.warnings[0]!.text, /rewards\/margins and loss were not a finite number .* at 1 step, first at step 2/);
  assert.match(run.warnings[1]!.text, /^Run bad, round 1: metrics\.jsonl has 2 unreadable lines, left out of the charts \(line 2: not valid JSON/);
});

test("a run that cannot be read is named in the problems, and the others are still shown", async (t) => {
  const ws = tempDir(t);
  await finishedRun(ws, "good");
  mkdirSync(join(selftrainDir(ws), "runs", "broken"), { recursive: true });
  writeFileSync(join(selftrainDir(ws), "runs", "broken", "manifest.json"), "{ nope");
  const { runs, problems } = await readDashboard(ws);
  assert.deepEqual(runs.map((r) => r.runId), ["good"]);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^Run broken is not shown: .*manifest\.json: invalid JSON/);
  assert.deepEqual(await readDashboard(tempDir(t)), { runs: [], problems: [] }, "a workspace without runs is empty, not an error");
});

test("live records are merged into the model: appended, repeats skipped, a restarted stage reset, summaries and warnings updated", async (t) => {
  const ws = tempDir(t);
  const store = await finishedRun(ws);
  await stageDone(store, 2, "pairs", { pairs: 40, positives: 50, negatives: 60 });
  await store.setStage(2, "dpo", { state: "running" });
  const run = await readRunMetrics(selftrainDir(ws), store.runId);
  assert.equal(run.steps.some((s) => s.round === 2), false);

  const first = mergeLiveRecords(run, [1, 2, 3].map((s) => trainRecord(2, "dpo", s, 50, dpoValues(s))));
  assert.equal(first.roundsChanged, false);
  assert.deepEqual(first.appended.map((a) => [a.round, a.stage, a.totalSteps, a.reset, a.points.map((p) => p.step)]), [[2, "dpo", 50, false, [1, 2, 3]]]);
  assert.equal(first.appended[0]!.points[1]!.values["rewards/chosen"], 0.004);
  assert.deepEqual(run.steps.map((s) => `${s.round}:${s.stage}`), ["0:warmup", "1:dpo", "1:sft", "2:dpo"], "a new stage is inserted in order");
  const live = run.steps[3]!;
  assert.deepEqual(live.series["loss"]!.x, [1, 2, 3]);

  // A repeat of a step already held is skipped; a record without what makes it usable is rejected with a reason.
  const again = mergeLiveRecords(run, [trainRecord(2, "dpo", 3, 50, dpoValues(3)), trainRecord(2, "dpo", 4, 50, dpoValues(4)), { kind: "train", round: 2, stage: "rlhf", step: 5 }]);
  assert.deepEqual(again.appended.map((a) => a.points.map((p) => p.step)), [[4]]);
  assert.equal(again.rejected.length, 1);
  assert.match(again.rejected[0]!, /"stage" must be one of warmup, dpo, sft, got "rlhf"/);
  assert.equal(live.recorded, 4);

  // Step 1 after step 4: the stage started again (a resumed run), so what came before goes.
  const restarted = mergeLiveRecords(run, [trainRecord(2, "dpo", 1, 50, dpoValues(1)), trainRecord(2, "dpo", 2, 50, dpoValues(2))]);
  assert.deepEqual(restarted.appended.map((a) => [a.reset, a.points.map((p) => p.step)]), [[true, [1, 2]]]);
  assert.deepEqual(run.steps[3]!.series["loss"]!.x, [1, 2]);
  assert.equal(run.steps[3]!.recorded, 2);

  // Warnings follow live data: a DPO loss at zero appears as soon as it is there.
  assert.equal(run.warnings.some((w) => w.kind === "loss-zero"), false);
  mergeLiveRecords(run, [3, 4, 5, 6, 7].map((s) => trainRecord(2, "dpo", s, 50, { ...dpoValues(s), loss: 1e-5 })));
  assert.deepEqual(run.warnings.filter((w) => w.kind === "loss-zero").map((w) => `${w.round}:${w.stage}`), ["2:dpo"]);
  mergeLiveRecords(run, [8, 9, 10, 11, 12].map((s) => trainRecord(2, "dpo", s, 50, dpoValues(s))));
  assert.equal(run.warnings.some((w) => w.kind === "loss-zero"), false, "and goes when the loss recovers");

  // A round summary replaces the row; what only the manifest knew (test questions) is kept.
  const summary = mergeLiveRecords(run, [roundSummary(2, "dpo-st", { "accuracy/dev": 0.1, "accuracy/test": 0.1, pairs: 40, positives: 50, negatives: 60 })]);
  assert.equal(summary.roundsChanged, true);
  const r2 = run.rounds.find((r) => r.round === 2)!;
  assert.deepEqual([r2.testAccuracy, r2.evaluated, r2.pairs], [0.1, true, 40]);
  assert.equal(run.rounds.find((r) => r.round === 1)!.testQuestions, 400);
  // Round 2 fell from 30% to 10% on 400 questions: more than noise.
  assert.deepEqual(run.warnings.filter((w) => w.kind === "accuracy-drop").map((w) => w.round), [2]);
});

test("a live curve past twice the point budget is downsampled back to it", async (t) => {
  const ws = tempDir(t);
  const store = await RunStore.create(selftrainDir(ws), { runId: "live", mode: "dpo-st" });
  await store.setStage(0, "warmup", { state: "running" });
  const run = await readRunMetrics(selftrainDir(ws), "live", 10);
  for (let s = 1; s <= 20; s++) mergeLiveRecords(run, [trainRecord(0, "warmup", s, 100, { loss: 1 / s })], 10);
  assert.equal(run.steps[0]!.series["loss"]!.x.length, 20, "at twice the budget it is kept whole");
  const merged = mergeLiveRecords(run, [trainRecord(0, "warmup", 21, 100, { loss: 1 / 21 })], 10);
  assert.deepEqual(merged.appended[0]!.points.map((p) => p.step), [21], "the webview still gets the new point");
  const loss = run.steps[0]!.series["loss"]!;
  assert.equal(loss.x.length, 10);
  assert.deepEqual([loss.x[0], loss.x[9]], [1, 21]);
  assert.equal(run.steps[0]!.recorded, 21);
});

test("the status line finds the running stage: the latest started, one that logs no steps, never one whose process is gone", async (t) => {
  const ws = tempDir(t);
  const a = await RunStore.create(selftrainDir(ws), { runId: "a", mode: "dpo-st" });
  const b = await RunStore.create(selftrainDir(ws), { runId: "b", mode: "dpo-st" });
  assert.equal(await findRunningStage(ws), null);
  await a.setStage(1, "dpo", { state: "running", startedAt: "2026-11-25T10:00:00.000Z" });
  assert.deepEqual(await findRunningStage(ws), { runId: "a", round: 1, stage: "dpo" });
  // "a" still says running; "b" started later and is the one reporting.
  await b.setStage(1, "dpo", { state: "running", startedAt: "2026-11-25T11:00:00.000Z" });
  assert.deepEqual(await findRunningStage(ws), { runId: "b", round: 1, stage: "dpo" });
  await b.setStage(1, "dpo", { state: "done" });
  await b.setStage(1, "sample-sft", { state: "running", startedAt: "2026-11-25T11:30:00.000Z" });
  assert.deepEqual(await findRunningStage(ws), { runId: "b", round: 1, stage: "sample-sft" }, "a stage that logs no steps is found too");
  // A stage whose process is gone (a kill) is interrupted, not running.
  await b.setStage(1, "sample-sft", { pid: 2 ** 30 });
  assert.deepEqual(await findRunningStage(ws), { runId: "a", round: 1, stage: "dpo" });
});

test("an engine that auto fell back to is said with its reason, from the files and live; a later record without one clears it", async (t) => {
  const ws = tempDir(t);
  const store = await RunStore.create(selftrainDir(ws), { runId: "fell-back", mode: "dpo-st" });
  await stageDone(store, 0, "warmup", { steps: 2 });
  const why = "ONNX Runtime could not start (no binary for this platform)";
  writeMetrics(store, 0, steps(2).map((s) => ({ ...trainRecord(0, "warmup", s, 2, { loss: 1 }), engine: "tfjs", device: "wasm (SIMD, 1 thread)", engineFallback: why })));
  const run = await readRunMetrics(selftrainDir(ws), store.runId);
  assert.deepEqual([run.engine, run.engineFallback], ["tfjs", why]);

  mergeLiveRecords(run, [trainRecord(1, "dpo", 1, 5, dpoValues(1))]);
  assert.deepEqual([run.engine, run.engineFallback], ["onnxruntime", null], "the engine that trains now did not fall back");
  mergeLiveRecords(run, [{ ...trainRecord(1, "dpo", 2, 5, dpoValues(2)), engine: "tfjs", engineFallback: why }]);
  assert.equal(run.engineFallback, why);
});
