// The "did you mean" behind config.json's unknown settings: edit distance with swaps, and a nearest word only when
// it is near enough to be the one meant.
import { test } from "node:test";
import assert from "node:assert/strict";
import { editDistance, nearestWord } from "../../../src/core/util/nearestWord";

test("edit distance counts insertions, deletions, substitutions and a swap of neighbours as 1 each", () => {
  assert.equal(editDistance("maxNewToken", "maxNewTokens"), 1);
  assert.equal(editDistance("betta", "beta"), 1);
  assert.equal(editDistance("tpoP", "topP"), 1, "a swap of neighbours");
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("same", "same"), 0);
});

test("the nearest word is found ignoring case, within a third of the word's length; else none", () => {
  const sampling = ["dpoSamples", "sftSamples", "temperature", "topP", "maxNewTokens", "calculator", "batchSize"];
  assert.equal(nearestWord("maxNewToken", sampling), "maxNewTokens");
  assert.equal(nearestWord("temprature", sampling), "temperature");
  assert.equal(nearestWord("topp", sampling), "topP");
  assert.equal(nearestWord("TOP_P", sampling), "topP", "Python's spelling, one edit away");
  assert.equal(nearestWord("top_k", sampling), null, "two edits in five letters is too far");
  assert.equal(nearestWord("beta", sampling), null);
  assert.equal(nearestWord("x", []), null);
  // A tie goes to the first candidate.
  assert.equal(nearestWord("ab", ["ac", "ad"]), "ac");
});
