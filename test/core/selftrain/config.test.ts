import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, defaultConfig } from "../../../src/core/selftrain/config";

test("defaults follow method.md", () => {
  const c = defaultConfig();
  assert.deepEqual([c.sampling.dpoSamples, c.sampling.sftSamples, c.sampling.temperature, c.sampling.maxNewTokens, c.sampling.calculator], [5, 3, 0.7, 300, true]);
  assert.deepEqual([c.pairs.maxPerQuestion, c.pairs.duplicateThreshold, c.dpo.beta, c.dpo.steps, c.pseudoLabels.capPercentile], [3, 0.7, 0.1, 150, 90]);
  assert.deepEqual(parseConfig({}), c);
});

test("a setting of the wrong type, an unknown setting or an out-of-range value is named", () => {
  assert.throws(() => parseConfig({ sft: { learningRate: "fast" } }), /config\.json: sft\.learningRate must be a number, not "fast"/);
  assert.throws(() => parseConfig({ sampling: { dpoSamples: 2.5 } }), /sampling\.dpoSamples must be a whole number/);
  assert.throws(() => parseConfig({ dpo: { betta: 0.2 } }), /config\.json: dpo\.betta is not a setting; did you mean beta\?$/);
  assert.throws(() => parseConfig({ mode: "sft" }), /mode must be one of "dpo-st", "st", not "sft"/);
  assert.throws(() => parseConfig({ data: "x" }), /data must be an object/);
  assert.throws(() => parseConfig({ dpo: { microBatchSize: 64 } }), /dpo\.microBatchSize must be between 1 and dpo\.batchSize \(32\)/);
  assert.throws(() => parseConfig({ eval: { passK: 9 } }), /eval\.passK must not exceed eval\.passSamples \(5\)/);
  assert.throws(() => parseConfig({ model: { heads: 3 } }, "ws/.selftrain/config.json"), /^Error: ws\/.selftrain\/config\.json: model\.hiddenSize must be divisible/);
  assert.equal(parseConfig({ "//": "a note", sft: { learningRate: 1e-4 } }).sft.learningRate, 1e-4);
});

test("negative steps or epochs and a config from a newer version are refused, naming the field", () => {
  assert.throws(() => parseConfig({ warmup: { steps: -5, epochs: 2 } }), /warmup\.steps must not be negative/);
  assert.throws(() => parseConfig({ sft: { steps: -1 } }), /sft\.steps must not be negative/);
  assert.throws(() => parseConfig({ sft: { epochs: -2, steps: 10 } }), /sft\.epochs must not be negative/);
  assert.throws(() => parseConfig({ formatVersion: 99 }), /formatVersion is 99, newer than this version of Self-Training Studio reads \(1\); update the extension/);
  assert.throws(() => parseConfig({ formatVersion: 0 }), /formatVersion must be at least 1/);
});
