import { test } from "node:test";
import assert from "node:assert/strict";
import { extractFinalAnswer, parseNumber, answersMatch, isCorrect } from "../../../src/core/data/answerCheck";

test("parses numbers as rationales write them", () => {
  assert.equal(parseNumber("72"), 72);
  assert.equal(parseNumber("1,234"), 1234);
  assert.equal(parseNumber("$1,234.50"), 1234.5);
  assert.equal(parseNumber("-3"), -3);
  assert.equal(parseNumber("−3"), -3);
  assert.equal(parseNumber("-$5"), -5);
  assert.equal(parseNumber("$-5"), -5);
  assert.equal(parseNumber("45%"), 45);
  assert.equal(parseNumber(".5"), 0.5);
  assert.equal(parseNumber("18."), 18);
  assert.equal(parseNumber("abc"), null);
  assert.equal(parseNumber(""), null);
  assert.equal(parseNumber("1.2.3"), null);
});

test("extracts the number after the last ####", () => {
  assert.equal(extractFinalAnswer("a\n#### 5\nb\n#### 72")?.value, 72);
  assert.equal(extractFinalAnswer("x <<48/2=24>>24\n#### 1,080")?.value, 1080);
  assert.equal(extractFinalAnswer("#### $18.50")?.value, 18.5);
  assert.equal(extractFinalAnswer("#### -4")?.value, -4);
  assert.equal(extractFinalAnswer("#### 12%")?.value, 12);
  assert.equal(extractFinalAnswer("#### 0.25")?.value, 0.25);
  assert.equal(extractFinalAnswer("#### ")?.value, undefined);
  assert.equal(extractFinalAnswer("no answer at all"), null);
});

test("reads the `A: N` variant and 'The answer is N'", () => {
  const a = extractFinalAnswer("She has 3 + 4 = 7 eggs.\nA: 7");
  assert.equal(a?.value, 7);
  assert.equal(a?.marker, "A:");
  assert.equal(extractFinalAnswer("So the answer is 42.")?.value, 42);
});

test("compares answers numerically with tolerance 1e-4", () => {
  assert.ok(answersMatch(72, 72.00005));
  assert.ok(!answersMatch(72, 72.001));
  assert.ok(isCorrect("... #### 72.0", 72));
  assert.ok(isCorrect("... #### 1,080", 1080));
  assert.ok(!isCorrect("... #### 71", 72));
  assert.ok(!isCorrect("no final answer", 72));
});
