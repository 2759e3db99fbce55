import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, defaultConfig, defaultsNote, describeTraining } from "../../../src/core/selftrain/config";

test("a model folder starts from a pretrained model's settings (the paper's Llama column and its code's lengths), a new model from its own", () => {
  const c = parseConfig({ model: { init: "models/qwen2.5-0.5b-instruct" } });
  assert.deepEqual(c, defaultConfig("models/qwen2.5-0.5b-instruct"));
  assert.deepEqual([c.dpo.learningRate, c.dpo.beta, c.dpo.steps, c.dpo.warmupRatio, c.dpo.maxLength, c.dpo.maxPromptLength], [3e-7, 0.1, 100, 0.03, 640, 256]);
  for (const s of [c.warmup, c.sft]) assert.deepEqual([s.learningRate, s.epochs, s.steps, s.warmupRatio, s.maxLength, s.maxPromptLength], [1e-5, 2, 0, 0.03, 640, 256]);
  // Batches a CPU or one GPU holds: gradients accumulate over small micro-batches up to the optimiser's batch.
  for (const s of [c.warmup, c.sft, c.dpo]) assert.ok(s.microBatchSize <= 4 && s.batchSize % s.microBatchSize === 0, JSON.stringify(s));
  assert.equal(c.model.allowHighLearningRate, false);
  // Settings the file gives still win over the pretrained defaults; the rest of the method is unchanged.
  assert.equal(parseConfig({ model: { init: "m" }, sft: { learningRate: 2e-5 } }).sft.learningRate, 2e-5);
  assert.deepEqual([c.sampling, c.pairs, c.pseudoLabels, c.sft.from], [defaultConfig().sampling, defaultConfig().pairs, defaultConfig().pseudoLabels, "base"]);

  const fresh = parseConfig({});
  assert.deepEqual([fresh.model.init, fresh.warmup.learningRate, fresh.sft.learningRate, fresh.dpo.learningRate, fresh.sft.maxLength], ["new", 3e-3, 3e-3, 1e-5, 320]);
  assert.deepEqual(parseConfig({ model: { init: "new" } }), defaultConfig());
});

test("a learning rate above 1e-3 on a pretrained model is refused, naming the setting and the way to allow it; a new model is unaffected", () => {
  const refused = /^Error: ws\/\.selftrain\/config\.json: sft\.learningRate is 0\.003, above 1e-3 on a pretrained model \(model\.init is a folder\): it destroys a pretrained model in a few steps; set model\.allowHighLearningRate to true to use it on purpose$/;
  assert.throws(() => parseConfig({ model: { init: "models/base" }, sft: { learningRate: 3e-3 } }, "ws/.selftrain/config.json"), refused);
  assert.throws(() => parseConfig({ model: { init: "/abs/models/base" }, warmup: { learningRate: 0.01 } }), /warmup\.learningRate is 0\.01, above 1e-3 on a pretrained model/);
  assert.throws(() => parseConfig({ model: { init: "m" }, dpo: { learningRate: 2e-3 } }), /dpo\.learningRate is 0\.002, above 1e-3 .*model\.allowHighLearningRate/);
  // On purpose: accepted as written.
  const allowed = parseConfig({ model: { init: "models/base", allowHighLearningRate: true }, warmup: { learningRate: 3e-3 }, sft: { learningRate: 3e-3 } });
  assert.deepEqual([allowed.warmup.learningRate, allowed.sft.learningRate], [3e-3, 3e-3]);
  // 1e-3 itself is not above the limit.
  assert.equal(parseConfig({ model: { init: "m" }, sft: { learningRate: 1e-3 } }).sft.learningRate, 1e-3);
  // A new model trains at 3e-3 by default, and higher if asked.
  assert.equal(parseConfig({ sft: { learningRate: 1e-2 }, warmup: { learningRate: 1e-2 } }).sft.learningRate, 1e-2);
  assert.throws(() => parseConfig({ model: { allowHighLearningRate: "yes" } }), /model\.allowHighLearningRate must be a boolean, not "yes"/);
});

test("maxPromptLength: a whole number, 0 for no limit, never negative", () => {
  assert.equal(parseConfig({ dpo: { maxPromptLength: 0 } }).dpo.maxPromptLength, 0);
  assert.throws(() => parseConfig({ sft: { maxPromptLength: -1 } }), /sft\.maxPromptLength must not be negative \(0 means: no limit\)/);
  assert.throws(() => parseConfig({ warmup: { maxPromptLength: 12.5 } }), /warmup\.maxPromptLength must be a whole number/);
});

test("the line init prints and the block model inspect shows say which defaults and why", () => {
  assert.equal(
    defaultsNote(defaultConfig("models/base")),
    "settings for a pretrained model (model.init is a folder): DPO lr 3e-7, beta 0.1; SFT lr 1e-5, 2 epochs; max length 640, prompt 256: see docs/pretrained-defaults.md",
  );
  assert.equal(defaultsNote(defaultConfig()), `settings for a model trained from scratch (model.init "new"): SFT lr 3e-3, 8 epochs; DPO lr 1e-5, beta 0.1; max length 320, prompt 256`);
  assert.deepEqual(describeTraining(defaultConfig("models/base")), [
    "warm-up     lr 1e-5, 2 epochs, batch 32 sequences in micro-batches of 4, warm-up ratio 0.03",
    "DPO         lr 3e-7, 100 steps, batch 32 pairs in micro-batches of 2, warm-up ratio 0.03, beta 0.1",
    "SFT         lr 1e-5, 2 epochs, batch 32 sequences in micro-batches of 4, warm-up ratio 0.03, from the base model",
    "lengths     at most 640 tokens (DPO 640), prompts cut to their last 256 when longer",
  ]);
});
