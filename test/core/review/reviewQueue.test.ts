import { test } from "node:test";
import assert from "node:assert/strict";
import { neighbourInQueue, reviewQueue } from "../../../src/core/review/reviewQueue";
import type { QuestionSummary, RoundIndex } from "../../../src/core/explorer/roundIndex";

function index(groups: Array<QuestionSummary["group"]>): RoundIndex {
  const questions = groups.map((group, i): QuestionSummary => ({ questionId: `train:${i + 1}`, question: `Q${i + 1}?`, gold: i, samples: [], right: 0, sftSamples: [], pseudoLabels: 0, decided: false, group }));
  return { round: 1, samplesFile: "samples-dpo.jsonl", questions, counts: { mixed: 0, "all-wrong": 0, "all-right": 0, decided: 0, "pseudo-labels": 0, samples: 0, sftSamples: 0, pairs: 0, pseudoLabels: 0 }, pairsBy: { mixed: { pairs: 0, sampleChosen: 0 }, "all-wrong": { pairs: 0, sampleChosen: 0 }, "all-right": { pairs: 0, sampleChosen: 0 } } };
}

test("Next after a decision goes to the following question of the filter, even when the decision moved the shown one out of it", () => {
  // Mixed answers: questions 2, 4 and 6. The person is on question 4 and marks its only right sample wrong: it is all wrong now.
  const before = index(["all-wrong", "mixed", "all-right", "mixed", "all-wrong", "mixed"]);
  assert.deepEqual(reviewQueue(before, "mixed").map((q) => q.questionId), ["train:2", "train:4", "train:6"]);
  assert.equal(neighbourInQueue(before, "mixed", "train:4", "next"), 2);
  const after = index(["all-wrong", "mixed", "all-right", "all-wrong", "all-wrong", "mixed"]);
  const list = reviewQueue(after, "mixed");
  assert.equal(list[neighbourInQueue(after, "mixed", "train:4", "next")]!.questionId, "train:6", "Next goes on to question 6, not back to question 2");
  assert.equal(list[neighbourInQueue(after, "mixed", "train:4", "prev")]!.questionId, "train:2");
  // At the ends: past the last (or before the first) is said, not wrapped.
  assert.equal(neighbourInQueue(after, "mixed", "train:6", "next"), list.length);
  assert.equal(neighbourInQueue(after, "mixed", "train:1", "prev"), -1);
  assert.equal(neighbourInQueue(after, "mixed", "train:5", "next"), 1, "from a question outside the filter, the next one after it");
  assert.equal(neighbourInQueue(after, "mixed", null, "next"), 0);
  assert.equal(neighbourInQueue(after, "mixed", "train:6", "first"), 0);
});
