import { test } from "node:test";
import assert from "node:assert/strict";
import type { HostWeights } from "../../../../src/core/model/weights";
import { OrtEngine } from "../../../../src/core/engine/ort/ortEngine";
import { DEFAULT_OPTIMIZER } from "../../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../../src/core/train/batching";
import { CONFIGS, maxAbsDiff, randomSequences, randomWeights } from "../engineFixtures";

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
  // A model too large to embed: one session, fed the weights current when each decode starts.
  const fed = new OrtEngine(c, wa, { threads: 1 }, { decodeEmbedLimitBytes: 0 });
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
