import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuTf } from "../../../helpers/tf";
import { tinyConfig } from "../../../../src/core/model/config";
import { initWeights } from "../../../../src/core/model/weights";
import { TfEngine } from "../../../../src/core/engine/tf/tfEngine";
import { OrtEngine } from "../../../../src/core/engine/ort/ortEngine";
import { trainSft, trainDpo, referenceLogProbs } from "../../../../src/core/train/trainer";
import { makeBatch } from "../../../../src/core/train/batching";
import { encodeSequence } from "../../../../src/core/model/promptFormat";
import { generateSyntheticTask } from "../../../../src/core/data/synthetic";
import { trainBpe } from "../../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../../src/core/tokenizer/tokenizer";
import { sampleRationales } from "../../../../src/core/sample/sampler";
import { evaluate, formatResult } from "../../../../src/core/data/calculator";

// The ORT engine driven by the product's trainer and sampler on the synthetic task, then compared with the
// TF.js reference on the model it trained: the parity tests of ortEngine.test.ts on a trained (peaked) model.
const problems = generateSyntheticTask({ seed: 21, count: 400, maxSteps: 2 });
const tokenizer = tokenizerFromFiles(trainBpe(problems.flatMap((p) => [p.question, p.rationale]), { vocabSize: 320 }));
const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256 });

test("ORT engine: SFT halves the loss, then the trained model scores and decodes greedily as TF.js does", async (t) => {
  const engine = new OrtEngine(config, initWeights(config, 5), { threads: 2 });
  const data = problems.map((p) => encodeSequence(tokenizer, p.question, p.rationale));
  const logs = await trainSft(engine, data, { steps: 60, batchSize: 16, microBatchSize: 8, learningRate: 1e-2, warmupRatio: 0.1, maxLength: 200, seed: 1 });
  const first = logs.slice(0, 3).reduce((a, l) => a + l.loss, 0) / 3;
  const last = logs.slice(-5).reduce((a, l) => a + l.loss, 0) / 5;
  assert.ok(last < first / 2, `loss fell from ${first.toFixed(3)} only to ${last.toFixed(3)}`);

  const tf = await cpuTf();
  const reference = new TfEngine(tf, config, await engine.getWeights(), "cpu");
  const batch = makeBatch(data.slice(0, 8), config.pad_token_id, 200);
  const got = await engine.sequenceLogProbs(batch);
  const want = await reference.sequenceLogProbs(batch);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst < 1e-4 * batch.length, `sequence log-probs differ by ${worst}`);

  const questions = problems.slice(0, 8).map((p) => p.question);
  const options = { n: 1, temperature: 0, maxNewTokens: 60, calculator: true, seed: 3, batchSize: 8 };
  const ours = await sampleRationales(engine, tokenizer, questions, options);
  const theirs = await sampleRationales(reference, tokenizer, questions, options);
  assert.deepEqual(
    ours.map((s) => s[0]!.text),
    theirs.map((s) => s[0]!.text),
  );
  let calls = 0;
  for (const s of ours.flat()) {
    for (const c of s.calculatorCalls) {
      calls++;
      const r = evaluate(c.expression);
      assert.equal(c.forced, r.ok ? `${formatResult(r.value)}>>` : null);
    }
  }
  assert.ok(calls > 0, "the trained model never opened a calculation");
  t.diagnostic(`SFT loss ${first.toFixed(3)} → ${last.toFixed(3)}; max |Δ seq log-prob| ${worst.toExponential(2)} over ${batch.length} positions; ${calls} calculator calls`);
  reference.dispose();
  engine.dispose();
});

test("ORT engine: DPO on a toy preference set raises reward accuracies and margins", async () => {
  const engine = new OrtEngine(config, initWeights(config, 9), { threads: 2 });
  const pairs = problems.slice(0, 32).map((p) => ({
    chosen: encodeSequence(tokenizer, p.question, p.rationale),
    rejected: encodeSequence(tokenizer, p.question, p.rationale.replace(/#### (\d+)/, (_, n: string) => `#### ${Number(n) + 7}`)),
  }));
  const ref = await referenceLogProbs(engine, pairs, 16, 200);
  const logs = await trainDpo(engine, pairs, ref, 0.1, { steps: 30, batchSize: 16, microBatchSize: 8, learningRate: 6e-3, warmupRatio: 0.1, maxLength: 200, seed: 2 });
  const early = logs[0]!.dpo!;
  const late = logs.slice(-5);
  const acc = late.reduce((a, l) => a + l.dpo!["rewards/accuracies"], 0) / late.length;
  const margin = late.reduce((a, l) => a + l.dpo!["rewards/margins"], 0) / late.length;
  // The reference comes from the log-prob graph and the policy from the DPO graph (another batch layout), so
  // step 1 starts at the reference up to float32 rounding rather than exactly.
  assert.ok(Math.abs(early["rewards/margins"]) < 1e-4, `step 1 margin ${early["rewards/margins"]}`);
  assert.ok(acc >= 0.75, `reward accuracy ${acc}`);
  assert.ok(margin > 0.1, `margin ${margin}`);
  assert.ok(late.at(-1)!.loss < logs[0]!.loss - 0.05, `loss ${logs[0]!.loss} → ${late.at(-1)!.loss}`);
  engine.dispose();
});
