import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { RunStore } from "../../../src/core/store/runStore";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { buildRoundIndex, questionsIn } from "../../../src/core/explorer/roundIndex";
import type { SampleRecord, PairRecord } from "../../../src/shared/runTypes";
import { sampleTally } from "../../../src/shared/reviewProtocol";
import { tempDir } from "../../helpers/paths";

function sample(q: number, i: number, correct: boolean): SampleRecord {
  return {
    hash: `h${q}-${i}`, questionId: `q${q}`, question: `Question ${q}?`, rationale: `Step one for ${q}.\nStep two ${i}.\n#### ${correct ? q : q + 1}`,
    answer: correct ? q : q + 1, gold: q, correct, logProb: -3, calculatorCalls: [], arithmeticErrors: i === 4 ? 1 : 0, finished: true, round: 1, index: i,
  };
}

test("a 50,000-sample round is indexed into groups without blocking the event loop; roles and decisions show", async (t) => {
  const dir = tempDir(t);
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  // 10,000 questions × 5 samples: q%3 == 0 all wrong, q%3 == 1 mixed (2 right), q%3 == 2 all right.
  const lines: string[] = [];
  for (let q = 0; q < 10_000; q++) for (let i = 0; i < 5; i++) lines.push(JSON.stringify(sample(q, i, q % 3 === 2 || (q % 3 === 1 && i < 2))));
  const file = store.path(1, "samples-dpo.jsonl");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, lines.join("\n") + "\n");
  const pair: PairRecord = { questionId: "q1", question: "Question 1?", chosenHash: "h1-0", rejectedHash: "h1-3", chosen: "", rejected: "", similarity: 0.2, source: "automatic", round: 1 };
  writeFileSync(store.path(1, "pairs.jsonl"), JSON.stringify(pair) + "\n");
  writeFileSync(store.path(1, "pseudo-labels.jsonl"), JSON.stringify({ questionId: "q2", question: "Question 2?", hash: "h2-1", rationale: "", source: "automatic", round: 1 }) + "\n");
  const reviews = new ReviewLog(dir);
  reviews.append({ kind: "mark", verdict: "correct", hash: "h0-0" }); // q0 becomes mixed
  reviews.append({ kind: "exclude-sample", hash: "h4-2" });

  let maxGap = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const started = Date.now();
  const index = await buildRoundIndex(store, 1, reviews);
  const ms = Date.now() - started;
  clearInterval(timer);
  t.diagnostic(`indexed 50,000 samples in ${ms} ms; longest event-loop stall ${maxGap} ms`);
  assert.ok(maxGap < 250, `the event loop stalled for ${maxGap} ms`);

  assert.equal(index.counts.samples, 50_000);
  assert.equal(index.questions.length, 10_000);
  assert.equal(index.counts["all-right"], 3333);
  assert.equal(index.counts.mixed, 3333 + 1);
  assert.equal(index.counts["all-wrong"], 3334 - 1);
  assert.deepEqual(questionsIn(index, "decided").map((q) => q.questionId).sort(), ["q0", "q4"]);
  const q1 = index.questions.find((q) => q.questionId === "q1")!;
  assert.deepEqual(q1.samples.map((s) => s.roles), [["chosen"], [], [], ["rejected"], []]);
  assert.equal(q1.right, 2);
  assert.deepEqual(index.questions.find((q) => q.questionId === "q2")!.samples[1]!.roles, ["pseudo-label"]);
  const q0 = index.questions.find((q) => q.questionId === "q0")!.samples[0]!;
  assert.deepEqual([q0.correct, q0.autoCorrect, q0.decided], [true, false, "correct"]);
  assert.equal(index.questions.find((q) => q.questionId === "q4")!.samples[2]!.decided, "excluded");
  assert.equal(q1.samples[4]!.arithmeticErrors, 1);
});

test("a DPO round's index holds the SFT step's samples and the pseudo-labels as well, and says the same per question as the review", async (t) => {
  const dir = tempDir(t);
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  mkdirSync(store.roundDir(1), { recursive: true });
  // Question 7: 5 DPO-step samples (3 right), 3 SFT-step samples (1 right, kept as a pseudo-label). Question 8: only wrong ones.
  const dpo = [0, 1, 2, 3, 4].map((i) => sample(7, i, i < 3));
  const sft = [0, 1, 2].map((i) => ({ ...sample(7, i, i === 0), hash: `sft7-${i}` }));
  const other = [0, 1].map((i) => sample(8, i, false));
  writeFileSync(store.path(1, "samples-dpo.jsonl"), [...dpo, ...other].map((s) => JSON.stringify(s)).join("\n") + "\n");
  writeFileSync(store.path(1, "samples-sft.jsonl"), [...sft, ...other.map((s) => ({ ...s, hash: `sft-${s.hash}` }))].map((s) => JSON.stringify(s)).join("\n") + "\n");
  writeFileSync(store.path(1, "pseudo-labels.jsonl"), JSON.stringify({ questionId: "q7", question: "Question 7?", hash: "sft7-0", rationale: "", source: "automatic", round: 1 }) + "\n");
  const index = await buildRoundIndex(store, 1, new ReviewLog(dir));
  const q7 = index.questions.find((q) => q.questionId === "q7")!;
  assert.deepEqual([q7.samples.length, q7.right, q7.sftSamples.length, q7.pseudoLabels], [5, 3, 3, 1]);
  assert.deepEqual(q7.sftSamples.map((s) => [s.stage, s.roles]), [["sft", ["pseudo-label"]], ["sft", []], ["sft", []]]);
  assert.equal(q7.group, "mixed", "groups judge by the DPO step's samples");
  assert.deepEqual([index.counts.samples, index.counts.sftSamples, index.counts.pseudoLabels, index.counts["pseudo-labels"]], [7, 5, 1, 1]);
  assert.deepEqual(questionsIn(index, "pseudo-labels").map((q) => q.questionId), ["q7"]);
  // The three answer-check groups add up to the questions; "decided" and "pseudo-labels" overlap them.
  assert.equal(index.counts.mixed + index.counts["all-wrong"] + index.counts["all-right"], index.questions.length);
  // The explorer's words for question 7 are the review header's (both from sampleTally over both steps).
  assert.equal(sampleTally([...q7.samples, ...q7.sftSamples]), "DPO step 3/5 right · SFT step 1/3 right");
});

test("a sample's badges say what the next round does with it, as the review resolves decisions; pairs are counted by where they come from", async (t) => {
  const dir = tempDir(t);
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  mkdirSync(store.roundDir(1), { recursive: true });
  // Question 5: sample 1 right, 2 and 3 wrong; question 6: both wrong, so its pairs are gold ≻ sample.
  const rows = [sample(5, 0, true), sample(5, 1, false), sample(5, 2, false), sample(6, 0, false), sample(6, 1, false)];
  writeFileSync(store.path(1, "samples-dpo.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const pair = (q: number, chosenHash: string, rejectedHash: string): PairRecord => ({ questionId: `q${q}`, question: `Question ${q}?`, chosenHash, rejectedHash, chosen: "", rejected: "", similarity: 0.2, source: "automatic", round: 1 });
  const pairs = [pair(5, "h5-0", "h5-1"), pair(5, "gold5", "h5-2"), pair(6, "gold6", "h6-0"), pair(6, "gold6", "h6-1")];
  writeFileSync(store.path(1, "pairs.jsonl"), pairs.map((p) => JSON.stringify(p)).join("\n") + "\n");
  writeFileSync(store.path(1, "pseudo-labels.jsonl"), JSON.stringify({ questionId: "q5", question: "Question 5?", hash: "h5-0", rationale: "", source: "automatic", round: 1 }) + "\n");
  const reviews = new ReviewLog(dir);
  reviews.append({ kind: "mark", verdict: "correct", hash: "h5-1" }); // the rejected side marked right
  reviews.append({ kind: "mark", verdict: "wrong", hash: "h5-0" }); // the chosen side (and pseudo-label) marked wrong
  reviews.append({ kind: "exclude-sample", hash: "h6-0" });
  reviews.append({ kind: "force-pair", questionId: "q6", chosenHash: "h6-1", rejectedHash: "gold6" }); // a swap

  const index = await buildRoundIndex(store, 1, reviews);
  const s = (hash: string) => index.questions.flatMap((q) => q.samples).find((x) => x.hash === hash)!;
  assert.deepEqual([s("h5-1").roles, s("h5-1").next], [["rejected"], ["positive next round"]], "marked right: no longer 'rejected'");
  // Its pair is dropped for the first reason the review gives (review/pairFate.ts): here the other side's verdict.
  assert.deepEqual(s("h5-1").nextWhy, ["Rejected in this round's pairs; next round not: you marked its chosen side, sample 1, wrong.", "You marked it right: the next round pairs it as a chosen side."]);
  assert.deepEqual([s("h5-0").roles, s("h5-0").next], [["chosen", "pseudo-label"], ["negative next round"]]);
  assert.deepEqual(s("h6-0").next, ["left out next round"]);
  assert.deepEqual(s("h6-1").next, ["chosen"], "a swapped pair turns its role round");
  // Undecided samples keep their roles, with nothing to explain.
  assert.deepEqual([s("h5-2").next, s("h5-2").nextWhy], [["rejected"], []]);
  // Question 5 is mixed (sample 2 is right now); question 6 has no right sample but two gold ≻ sample pairs.
  assert.deepEqual(index.pairsBy, { mixed: { pairs: 2, sampleChosen: 1 }, "all-wrong": { pairs: 2, sampleChosen: 0 }, "all-right": { pairs: 0, sampleChosen: 0 } });
});
