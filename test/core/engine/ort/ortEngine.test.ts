import { test } from "node:test";
import assert from "node:assert/strict";
import type { HostWeights } from "../../../../src/core/model/weights";
import { OrtEngine } from "../../../../src/core/engine/ort/runtime/ortEngine";
import { DEFAULT_OPTIMIZER } from "../../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../../src/core/train/batching";
import { CONFIGS, maxAbsDiff, randomSequences, randomWeights } from "../engineFixtures";
import { tinyConfig } from "../../../../src/core/model/config";
import { initWeights } from "../../../../src/core/model/weights";
import { Rng } from "../../../../src/core/util/rng";

// What only the ORT engine has: decoding sessions built per weight version. Its parity with the TF.js reference
// (losses, gradients, log-probabilities, decoding) is checked by ../conformance.test.ts, as every engine's is.

test("decoding follows the weights: one session per weight version, rebuilt after setWeights and optimizer steps", async () => {
  const c = CONFIGS["tied"]!;
  const prompts = [[1, 5, 6, 7], [1, 9]];
  const wa = randomWeights(c, 31);
  const wb = randomWeights(c, 32);
  /** Logits of the prompt pass and of one step with tokens 3, 4. */
  const decode = async (e: OrtEngine): Promise<Float32Array[]> => {
    const { session, logits } = await e.startDecoding(prompts);
    const next = await session.step([3, 4]);
    session.dispose();
    return [logits, next];
  };
  const fresh = async (w: HostWeights): Promise<Float32Array[]> => {
    const e = new OrtEngine(c, w, { threads: 1 });
    const out = await decode(e);
    e.dispose();
    return out;
  };
  const [refA, refB] = [await fresh(wa), await fresh(wb)];
  const oe = new OrtEngine(c, wa, { threads: 1 });
  assert.deepEqual(await decode(oe), refA);
  assert.deepEqual(await decode(oe), refA);
  assert.equal(oe.decodeSessionsBuilt, 1, "the decoding session is shared while the weights stay");
  // A decode begun before the weights change keeps its weights to the end.
  const before = await oe.startDecoding(prompts);
  oe.setWeights(wb);
  assert.deepEqual(await decode(oe), refB);
  assert.equal(oe.decodeSessionsBuilt, 2);
  assert.deepEqual(await before.session.step([3, 4]), refA[1]);
  before.session.dispose();
  // An optimizer step changes the weights too.
  await oe.sftBackward(makeBatch(randomSequences(c, 3, 33), c.pad_token_id, 32), 1);
  await oe.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
  assert.deepEqual(await decode(oe), await fresh(await oe.getWeights()));
  assert.equal(oe.decodeSessionsBuilt, 3);
  oe.dispose();
  // Weights in a file beside the graph (a model too large to embed): a session per weight version, as embedded.
  const filed = new OrtEngine(c, wa, { threads: 1 }, { decodeEmbedLimitBytes: 0 });
  assert.deepEqual(await decode(filed), refA);
  filed.setWeights(wb);
  assert.deepEqual(await decode(filed), refB);
  assert.equal(filed.decodeSessionsBuilt, 2);
  filed.dispose();
  // Weights fed (as on a device): one session, fed the weights current when each decode starts.
  const fed = new OrtEngine(c, wa, { threads: 1 }, { decodeWeights: "fed" });
  const fedBefore = await fed.startDecoding(prompts);
  const close = (x: Float32Array[], y: Float32Array[]): void => x.forEach((a, i) => assert.ok(maxAbsDiff(a, y[i]!) < 1e-5));
  close([fedBefore.logits], [refA[0]!]);
  fed.setWeights(wb);
  close(await decode(fed), refB);
  close([await fedBefore.session.step([3, 4])], [refA[1]!]);
  fedBefore.session.dispose();
  assert.equal(fed.decodeSessionsBuilt, 1);
  fed.dispose();
});

test("on 2 threads, training computes the same gradients every run and the same as on 1 thread (the embedding gradient does not race)", async () => {
  // Big enough that ONNX Runtime splits kernels over threads: 32 rows of 60-119 tokens over a 768-token vocabulary.
  const c = tinyConfig(768, { hidden_size: 128, intermediate_size: 352, num_hidden_layers: 2, max_position_embeddings: 320 });
  const w = initWeights(c, 1);
  const rng = new Rng(5);
  const seqs = Array.from({ length: 32 }, () => ({ ids: Array.from({ length: 60 + Math.floor(rng.next() * 60) }, () => 3 + Math.floor(rng.next() * 60)), promptLength: 20 }));
  const batch = makeBatch(seqs, 0, 256);
  const gradients = async (threads: number): Promise<HostWeights> => {
    const e = new OrtEngine(c, w, { threads });
    await e.sftBackward(batch, 1);
    const g = (await e.accumulatedGradients())!;
    e.dispose();
    return g;
  };
  const [one, a, b] = [await gradients(1), await gradients(2), await gradients(2)];
  for (const [name, t] of one) {
    assert.equal(maxAbsDiff(a.get(name)!.data, b.get(name)!.data), 0, `${name}: two runs on 2 threads differ`);
    const scale = Math.max(1e-6, ...Array.from(t.data, Math.abs));
    assert.ok(maxAbsDiff(a.get(name)!.data, t.data) <= 1e-5 * scale, `${name}: 2 threads differ from 1 thread by ${maxAbsDiff(a.get(name)!.data, t.data)} (largest entry ${scale})`);
  }
});
