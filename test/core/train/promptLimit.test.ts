import { test } from "node:test";
import assert from "node:assert/strict";
import { limitPrompt, makeBatch } from "../../../src/core/train/batching";
import type { EncodedSequence } from "../../../src/core/model/promptFormat";

/** A sequence of `prompt` prompt tokens (ids 1000…) then `completion` completion tokens (ids 1…). */
function seq(prompt: number, completion: number): EncodedSequence {
  return { ids: [...Array.from({ length: prompt }, (_, i) => 1000 + i), ...Array.from({ length: completion }, (_, i) => 1 + i)], promptLength: prompt };
}

test("limitPrompt: a sequence that fits is untouched; a longer one keeps its prompt's last maxPromptLength tokens (TRL's keep_end)", () => {
  const fits = seq(300, 40); // 339 positions
  assert.deepEqual(limitPrompt([fits], 340, 256), [fits]);
  const long = seq(300, 100);
  const [cut] = limitPrompt([long], 320, 256);
  assert.equal(cut!.promptLength, 256);
  assert.deepEqual(cut!.ids.slice(0, 256), long.ids.slice(44, 300), "the prompt's end is kept");
  assert.deepEqual(cut!.ids.slice(256), long.ids.slice(300), "the completion is whole");
  // A prompt already within the limit is kept even when its completion is too long (makeBatch cuts that at its end).
  const short = seq(20, 400);
  assert.deepEqual(limitPrompt([short], 320, 256), [short]);
  // 0: no limit.
  assert.deepEqual(limitPrompt([long], 320, 0), [long]);
});

test("limitPrompt: a pair is cut alike, by its longer side, so DPO compares both completions after the same prompt", () => {
  const chosen = seq(300, 10); // fits 320 on its own
  const rejected = seq(300, 80); // does not
  const [c, r] = limitPrompt([chosen, rejected], 320, 256);
  assert.equal(c!.promptLength, 256);
  assert.equal(r!.promptLength, 256);
  assert.deepEqual(c!.ids.slice(0, 256), r!.ids.slice(0, 256));
});

test("behind a long prompt the completion is trained on once the prompt is limited, not cut away", () => {
  const long = seq(400, 60);
  const before = makeBatch([long], 0, 320);
  assert.equal(before.tokens, 0, "makeBatch alone cuts the whole completion");
  const after = makeBatch(limitPrompt([long], 320, 256), 0, 320);
  assert.equal(after.tokens, 60, "every completion token is a target");
});
