// The Dataset Explorer's Data, Run and Next rows agree with the files (issue 28 §3): the data a round uses, the
// rounds as the manifest has them, and a next step for every state of a run. Runs are real folders the tests
// write with RunStore, in the states a round leaves them in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../../src/core/selftrain/config";
import { roundStages } from "../../../src/core/selftrain/stages";
import { RunStore } from "../../../src/core/store/runStore";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { buildRoundIndex } from "../../../src/core/explorer/roundIndex";
import { dataUse, describeData, describeRun, nextStep, runProgress, samplesToReview } from "../../../src/core/explorer/treeRows";
import type { SampleRecord } from "../../../src/shared/runTypes";
import { tempDir } from "../../helpers/paths";

const notLive = (): boolean => false;

async function finish(store: RunStore, round: number, except: string[] = []): Promise<void> {
  for (const s of roundStages(round, store.manifest.mode)) if (!except.includes(s)) await store.setStage(round, s, { state: "done" });
}

test("Data says what the round uses (data.maxTrainQuestions, eval.maxQuestions); the totals are in the tooltip", async (t) => {
  const ws = tempDir(t);
  mkdirSync(join(ws, "data"));
  writeFileSync(join(ws, "data/train.jsonl"), Array.from({ length: 1000 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: "#### 1" })).join("\n") + "\n");
  writeFileSync(join(ws, "data/test.jsonl"), Array.from({ length: 30 }, () => JSON.stringify({ question: "t", answer: "#### 1" })).join("\n") + "\n");
  const c = defaultConfig();
  c.data = { ...c.data, train: "data/train.jsonl", test: "data/test.jsonl", devSize: 200, maxTrainQuestions: 40 };
  c.eval = { ...c.eval, maxQuestions: 20 };
  const use = await dataUse(c, ws);
  assert.deepEqual([use.lines, use.train, use.used, use.dev, use.test, use.devEval, use.testEval], [1000, 800, 40, 200, 30, 20, 20]);
  const text = describeData(use);
  assert.equal(text.description, "40 train · 20 dev · 20 test");
  assert.match(text.tooltip, /1,000 questions\./);
  assert.match(text.tooltip, /uses 40 of the 800 train questions \(data\.maxTrainQuestions\)/);
  assert.match(text.tooltip, /Test: 30, from .*test\.jsonl; evaluation uses 20 \(eval\.maxQuestions\)/);
  // No test file: the test split comes out of the train file too; a missing file is said.
  c.data = { ...c.data, test: "", testSize: 100, maxTrainQuestions: 0 };
  c.eval = { ...c.eval, maxQuestions: 0 };
  assert.equal(describeData(await dataUse(c, ws)).description, "700 train · 200 dev · 100 test");
  c.data = { ...c.data, train: "data/gone.jsonl" };
  assert.equal(describeData(await dataUse(c, ws)).description, "gone.jsonl missing");
});

test("Run counts rounds as the manifest says: round 1 begun with 0 of 7 stages done is not '2 rounds'", async (t) => {
  const dir = tempDir(t);
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  assert.equal(describeRun(store.manifest, runProgress(store.manifest, notLive)).description, "warm-up 0/2");
  await finish(store, 0);
  await store.setStage(1, "sample-dpo", { state: "pending" });
  assert.equal(store.manifest.rounds.length, 2, "the manifest has two round records: the warm-up and round 1");
  const p = runProgress(store.manifest, notLive);
  assert.deepEqual([p.finished, p.warmupDone, p.current?.round, p.current?.done, p.current?.total, p.current?.state], [0, true, 1, 0, 7, "not started"]);
  assert.equal(describeRun(store.manifest, p).description, "round 1: 0/7");
  assert.equal(nextStep(store.manifest, p, null, null).label, "Next: ▶ Start round 1");

  // Round 1 stopped in DPO by a kill (a running stage whose process is gone): resume it.
  await store.setStage(1, "sample-dpo", { state: "done" });
  await store.setStage(1, "pairs", { state: "done" });
  await store.setStage(1, "dpo", { state: "running" });
  const stopped = runProgress(store.manifest, notLive);
  assert.equal(stopped.current?.state, "interrupted");
  const resume = nextStep(store.manifest, stopped, null, null);
  assert.deepEqual([resume.label, resume.description, resume.action.command], ["Next: Resume round 1 (DPO)", "2/7", "selfTraining.startRound"]);
  assert.match(describeRun(store.manifest, stopped).tooltip, /Round 1: 2 of 7 stages done; DPO was interrupted/);
  // While it runs: watch it on the dashboard.
  const live = nextStep(store.manifest, runProgress(store.manifest, () => true), null, null);
  assert.deepEqual([live.label, live.action.command], ["Now: round 1 (DPO)", "selfTraining.openDashboard"]);
  // A failed stage: retry, with its error in the tooltip.
  await store.setStage(1, "dpo", { state: "failed", error: "out of memory" });
  const failed = nextStep(store.manifest, runProgress(store.manifest, notLive), null, null);
  assert.equal(failed.label, "Next: Retry round 1 (DPO)");
  assert.match(failed.tooltip, /DPO failed: out of memory/);

  // Two rounds finished, none begun: "2 rounds done", and the next step is round 3, with its estimate.
  await finish(store, 1);
  await finish(store, 2);
  const two = runProgress(store.manifest, notLive);
  assert.equal(describeRun(store.manifest, two).description, "2 rounds done");
  const start = nextStep(store.manifest, two, { text: "about 6 minutes", basis: "this run's rates" }, null);
  assert.deepEqual([start.label, start.description], ["Next: ▶ Start round 3", "about 6 minutes"]);
  assert.match(start.tooltip, /Estimated about 6 minutes, from this run's rates\./);
  await store.setStage(3, "sample-dpo", { state: "done" });
  assert.equal(describeRun(store.manifest, runProgress(store.manifest, notLive)).description, "2 done · round 3: 1/7");
  // No run yet.
  assert.equal(nextStep(null, null, null, null).label, "Next: ▶ Start round");
});

function sample(q: number, i: number, correct: boolean, arithmeticErrors = 0): SampleRecord {
  return {
    hash: `h${q}-${i}`, questionId: `q${q}`, question: `Question ${q}?`, rationale: `Step ${i}.\n#### ${correct ? q : q + 1}`,
    answer: correct ? q : q + 1, gold: q, correct, logProb: -3, calculatorCalls: [], arithmeticErrors, finished: true, round: 1, index: i,
  };
}

test("after a finished round, Next asks to review the samples whose checks disagree, until each is decided", async (t) => {
  const dir = tempDir(t);
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  await finish(store, 0);
  await finish(store, 1);
  mkdirSync(store.roundDir(1), { recursive: true });
  // Question 3: two samples with the right answer reached by a wrong calculation; question 4: all fine.
  const rows = [sample(3, 0, true, 1), sample(3, 1, true, 2), sample(3, 2, false), sample(4, 0, true)];
  writeFileSync(store.path(1, "samples-dpo.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const reviews = new ReviewLog(dir);
  const p = runProgress(store.manifest, notLive);
  const review = { round: 1, ...samplesToReview(await buildRoundIndex(store, 1, reviews)) };
  assert.deepEqual(review, { round: 1, samples: 2, first: "q3" });
  const step = nextStep(store.manifest, p, null, review);
  assert.deepEqual([step.label, step.action], ["Next: review 2 samples", { command: "selfTraining.reviewRationales", target: { runId: store.runId, round: 1, questionId: "q3" } }]);
  assert.match(step.tooltip, /Or ▶ Start round 2 now\./);
  // Both decided: the next step is the next round.
  reviews.append({ kind: "mark", verdict: "wrong", hash: "h3-0" });
  reviews.append({ kind: "mark", verdict: "correct", hash: "h3-1" });
  const after = { round: 1, ...samplesToReview(await buildRoundIndex(store, 1, reviews)) };
  assert.equal(after.samples, 0);
  assert.equal(nextStep(store.manifest, p, null, after).label, "Next: ▶ Start round 2");
});
