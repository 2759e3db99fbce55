import { test } from "node:test";
import assert from "node:assert/strict";
import { generateSyntheticTask, toJsonlRecord } from "../../../src/core/data/synthetic";
import { splitExamples } from "../../../src/core/data/splits";
import { checkArithmetic } from "../../../src/core/data/annotations";
import { extractFinalAnswer } from "../../../src/core/data/answerCheck";
import { parseExampleLine } from "../../../src/core/data/jsonlReader";
import { DUPLICATE_THRESHOLD, jaccard, tokenSet } from "../../../src/core/selftrain/similarity";

test("synthetic problems are GSM8K-format, with correct annotations and final answer", () => {
  const examples = generateSyntheticTask({ seed: 7, count: 2000 });
  const steps = new Map<number, number>();
  const questions = new Set<string>();
  for (const [i, e] of examples.entries()) {
    const annotations = checkArithmetic(e.rationale);
    assert.ok(annotations.length >= 1 && annotations.length <= 4, e.rationale);
    for (const a of annotations) assert.equal(a.verdict.kind, "ok", `${e.id}: ${e.rationale}`);
    assert.equal(extractFinalAnswer(e.rationale)?.value, e.answer);
    // The last calculation is the answer, and every quantity is a non-negative integer.
    const last = annotations[annotations.length - 1]!;
    assert.equal(Number(last.written), e.answer);
    assert.ok(Number.isInteger(e.answer) && e.answer >= 0, `${e.id}: ${e.answer}`);
    // It parses back through the data set reader like any GSM8K line.
    const back = parseExampleLine(toJsonlRecord(e), i + 1, "syn.jsonl", "syn");
    assert.equal(back.answer, e.answer);
    steps.set(annotations.length, (steps.get(annotations.length) ?? 0) + 1);
    questions.add(e.question);
  }
  assert.deepEqual([...steps.keys()].sort(), [1, 2, 3, 4]);
  assert.ok(questions.size > 1990, `only ${questions.size} distinct questions`);
  const ops = new Set(examples.flatMap((e) => checkArithmetic(e.rationale).map((a) => a.expression.replace(/[0-9]/g, ""))));
  assert.deepEqual([...ops].sort(), ["*", "+", "-", "/"]);
});

test("same seed, same problems; other seed, other problems", () => {
  const a = generateSyntheticTask({ seed: 11, count: 50 });
  assert.deepEqual(a, generateSyntheticTask({ seed: 11, count: 50 }));
  assert.deepEqual(a.slice(0, 20), generateSyntheticTask({ seed: 11, count: 20 }));
  const b = generateSyntheticTask({ seed: 12, count: 50 });
  assert.ok(a.filter((e, i) => e.question === b[i]!.question).length < 3);
});

test("splits are deterministic by seed, disjoint and complete", () => {
  const all = generateSyntheticTask({ seed: 5, count: 1000 });
  const s = splitExamples(all, { dev: 100, test: 200 }, 42);
  assert.deepEqual([s.train.length, s.dev.length, s.test.length], [700, 100, 200]);
  const ids = new Set([...s.train, ...s.dev, ...s.test].map((e) => e.id));
  assert.equal(ids.size, 1000);
  assert.deepEqual(s, splitExamples(all, { dev: 100, test: 200 }, 42));
  assert.notDeepEqual(s.dev, splitExamples(all, { dev: 100, test: 200 }, 43).dev);
  assert.throws(() => splitExamples(all, { dev: 900, test: 200 }, 1), /cannot take 900 dev and 200 test/);
});

test("varied styles: the same questions and answers, three ways of writing the rationale that de-duplication tells apart", () => {
  const one = generateSyntheticTask({ seed: 9, count: 600, maxSteps: 3 });
  const varied = generateSyntheticTask({ seed: 9, count: 600, maxSteps: 3, styles: "varied" });
  const firstLine = new Map<string, number>();
  for (const [i, v] of varied.entries()) {
    const o = one[i]!;
    assert.equal(v.question, o.question);
    assert.equal(v.answer, o.answer);
    assert.equal(extractFinalAnswer(v.rationale)?.value, v.answer);
    // The same calculations, each annotated correctly, in any style.
    assert.deepEqual(checkArithmetic(v.rationale).map((a) => [a.expression, a.verdict.kind]), checkArithmetic(o.rationale).map((a) => [a.expression, a.verdict.kind]));
    const style = /^Step 1:/.test(v.rationale) ? "numbered" : /^\d/.test(v.rationale) ? "equations" : "story";
    firstLine.set(style, (firstLine.get(style) ?? 0) + 1);
    // A rationale in another style is not a duplicate of the story (token-set Jaccard ≤ 0.7).
    if (v.rationale !== o.rationale) assert.ok(jaccard(tokenSet(v.rationale), tokenSet(o.rationale)) <= DUPLICATE_THRESHOLD, `${v.rationale}\n---\n${o.rationale}`);
  }
  for (const style of ["story", "equations", "numbered"]) assert.ok((firstLine.get(style) ?? 0) > 150, `${style}: ${firstLine.get(style)} of 600`);
});
