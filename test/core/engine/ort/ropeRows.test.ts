// The graphs hold RoPE tables for the positions a run uses, not for max_position_embeddings (Llama 3.2's 131,072
// positions made them 67 MB in every graph): they start at ROPE_ROWS_START rows and grow when a longer sequence
// comes, with the same numbers as full tables.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OrtEngine, ROPE_ROWS_START } from "../../../../src/core/engine/ort/runtime/ortEngine";
import { sftGraph } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { DEFAULT_OPTIMIZER } from "../../../../src/core/engine/computeEngine";
import { tinyConfig } from "../../../../src/core/model/config";
import { makeBatch } from "../../../../src/core/train/batching";
import { maxAbsDiff, randomSequences, randomWeights } from "../engineFixtures";

const c = tinyConfig(48, { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 131_072 });

test("a graph's size follows the RoPE rows it holds, not max_position_embeddings", () => {
  const full = sftGraph(c).toBytes().byteLength;
  const sized = sftGraph(c, { ropeRows: ROPE_ROWS_START }).toBytes().byteLength;
  const hd = c.hidden_size / c.num_attention_heads;
  // Two float32 tables [rows, hd]: what the sized graph leaves out.
  assert.ok(full - sized >= 2 * (131_072 - ROPE_ROWS_START) * hd * 4, `${full} against ${sized} bytes`);
  assert.ok(sized < 1_000_000, `${sized} bytes`);
});

test("tables that start small grow for a longer batch or decode, with the numbers full tables give", async () => {
  const w = randomWeights(c, 4);
  const small = new OrtEngine(c, w, { threads: 1 }, { ropeRows: 8 });
  const full = new OrtEngine(c, w, { threads: 1 }, { ropeRows: c.max_position_embeddings });
  try {
    assert.equal(small.ropeTableRows, 8);
    const short = makeBatch(randomSequences(c, 2, 5).map((s) => ({ ...s, ids: s.ids.slice(0, 8) })), c.pad_token_id, 8);
    assert.ok(maxAbsDiff(await small.sequenceLogProbs(short), await full.sequenceLogProbs(short)) < 1e-5);
    const long = makeBatch(randomSequences(c, 3, 6), c.pad_token_id, 40);
    assert.ok(long.length > 8);
    const [a, b] = [await small.sequenceLogProbs(long), await full.sequenceLogProbs(long)];
    assert.ok(maxAbsDiff(a, b) < 1e-5, `log-probs differ by ${maxAbsDiff(a, b)}`);
    assert.equal(small.ropeTableRows, 8 * 2 ** Math.ceil(Math.log2(long.length / 8)), `doubled until the batch of ${long.length} fits`);
    // Training on the grown graphs matches too.
    await small.sftBackward(long, 1);
    await full.sftBackward(long, 1);
    await small.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
    await full.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
    assert.ok(maxAbsDiff(await small.sequenceLogProbs(long), await full.sequenceLogProbs(long)) < 1e-5);

    // Decoding sized to the prompt and the new tokens it asks for; a step past them is refused, saying why.
    const prompts = [[1, 5, 9, 13, 20], [1, 7]];
    const d1 = await small.startDecoding(prompts, 70);
    assert.equal(small.ropeTableRows, 128, "5 prompt positions and 70 new ones");
    const d2 = await full.startDecoding(prompts, 70);
    let err = maxAbsDiff(d1.logits, d2.logits);
    for (let s = 0; s < 70; s++) err = Math.max(err, maxAbsDiff(await d1.session.step([3, 4]), await d2.session.step([3, 4])));
    assert.ok(err < 1e-4, `decoding differs by ${err}`);
    d1.session.dispose();
    d2.session.dispose();
    const bounded = await small.startDecoding(prompts, 4);
    for (let s = 0; s < 123; s++) await bounded.session.step([3, 4]);
    await assert.rejects(bounded.session.step([3, 4]), /sequence of 129 tokens is longer than this decode session's 128 positions/);
    bounded.session.dispose();
  } finally {
    small.dispose();
    full.dispose();
  }
});
