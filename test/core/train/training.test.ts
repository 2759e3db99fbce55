import { test } from "node:test";
import assert from "node:assert/strict";
import { fastTf } from "../../helpers/tf";
import { tinyConfig } from "../../../src/core/model/config";
import { initWeights } from "../../../src/core/model/weights";
import { TfEngine } from "../../../src/core/engine/tf/tfEngine";
import { trainSft, trainDpo, referenceLogProbs } from "../../../src/core/train/trainer";
import { encodeSequence } from "../../../src/core/model/promptFormat";
import { generateSyntheticTask } from "../../../src/core/data/synthetic";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { sampleRationales } from "../../../src/core/sample/sampler";
import { findAnnotations } from "../../../src/core/data/annotations";
import { evaluate, formatResult } from "../../../src/core/data/calculator";

const problems = generateSyntheticTask({ seed: 21, count: 400, maxSteps: 2 });
const tokenizer = tokenizerFromFiles(trainBpe(problems.flatMap((p) => [p.question, p.rationale]), { vocabSize: 320 }));
const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256 });

test("SFT on the synthetic task halves the loss; calculator-aided decoding completes every `<<a op b=` correctly; no tensor leaks", async () => {
  const tf = await fastTf();
  const engine = new TfEngine(tf, config, initWeights(config, 5), "cpu");
  const data = problems.map((p) => encodeSequence(tokenizer, p.question, p.rationale));
  const tensorsAt: number[] = [];
  const logs = await trainSft(engine, data, { steps: 60, batchSize: 16, microBatchSize: 8, learningRate: 1e-2, warmupRatio: 0.1, maxLength: 200, seed: 1 }, {
    onStep: (l) => tensorsAt.push(tf.memory().numTensors + 0 * l.step),
  });
  const first = logs.slice(0, 3).reduce((a, l) => a + l.loss, 0) / 3;
  const last = logs.slice(-5).reduce((a, l) => a + l.loss, 0) / 5;
  assert.ok(last < first / 2, `loss fell from ${first.toFixed(3)} only to ${last.toFixed(3)}`);
  // Tensor count is flat after the first step (optimiser moments are created on step 1).
  assert.equal(Math.max(...tensorsAt.slice(1)), Math.min(...tensorsAt.slice(1)), `tensors: ${tensorsAt.join(",")}`);

  const before = tf.memory().numTensors;
  const samples = await sampleRationales(engine, tokenizer, problems.slice(0, 8).map((p) => p.question), { n: 2, temperature: 0.7, maxNewTokens: 80, calculator: true, seed: 3, batchSize: 16 });
  assert.equal(tf.memory().numTensors, before, "sampling leaked tensors");
  let calls = 0;
  for (const s of samples.flat()) {
    for (const c of s.calculatorCalls) {
      calls++;
      const r = evaluate(c.expression);
      assert.equal(c.forced, r.ok ? `${formatResult(r.value)}>>` : null);
    }
    // Every annotation the model opened with a computable expression carries the calculator's result.
    for (const a of findAnnotations(s.text)) {
      const r = evaluate(a.expression);
      if (r.ok && s.calculatorCalls.some((c) => c.expression === a.expression)) assert.equal(a.written, formatResult(r.value), s.text);
    }
  }
  assert.ok(calls > 0, "the trained model never opened a calculation");
  engine.dispose();
});

test("DPO on a toy preference set raises reward accuracies and margins within a few dozen steps", async () => {
  const tf = await fastTf();
  const engine = new TfEngine(tf, config, initWeights(config, 9), "cpu");
  const pairs = problems.slice(0, 32).map((p) => ({
    chosen: encodeSequence(tokenizer, p.question, p.rationale),
    rejected: encodeSequence(tokenizer, p.question, p.rationale.replace(/#### (\d+)/, (_, n: string) => `#### ${Number(n) + 7}`)),
  }));
  const ref = await referenceLogProbs(engine, pairs, 16, 200);
  const logs = await trainDpo(engine, pairs, ref, 0.1, { steps: 30, batchSize: 16, microBatchSize: 16, learningRate: 6e-3, warmupRatio: 0.1, maxLength: 200, seed: 2 });
  const early = logs[0]!.dpo!;
  const late = logs.slice(-5);
  const acc = late.reduce((a, l) => a + l.dpo!["rewards/accuracies"], 0) / late.length;
  const margin = late.reduce((a, l) => a + l.dpo!["rewards/margins"], 0) / late.length;
  assert.equal(early["rewards/margins"], 0, "step 1 starts at the reference");
  const mid = logs.slice(5, 10).reduce((a, l) => a + l.dpo!["rewards/margins"], 0) / 5;
  assert.ok(acc >= 0.75, `reward accuracy ${acc}`);
  assert.ok(margin > mid, `margin did not keep rising: ${mid} → ${margin}`);
  assert.ok(margin > 0.1, `margin ${margin}`);
  assert.ok(late.at(-1)!.loss < logs[0]!.loss - 0.05, `loss ${logs[0]!.loss} → ${late.at(-1)!.loss}`);
  engine.dispose();
});
