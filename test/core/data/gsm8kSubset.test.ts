import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { calculatorSteps, pickByCalculatorSteps } from "../../../src/core/data/gsm8kSubset";
import { wilson } from "../../../src/cli/realDemo";
import { gsm8kDir, GSM8K_ABSENT } from "../../helpers/paths";

const line = (q: string, a: string): string => JSON.stringify({ question: q, answer: a });

test("calculatorSteps counts a record's <<expr=result>> annotations; a line that is no such record is null", () => {
  assert.equal(calculatorSteps(line("q", "2+3 = <<2+3=5>>5 and 5*2 = <<5*2=10>>10\n#### 10")), 2);
  assert.equal(calculatorSteps(line("q", "It is 7.\n#### 7")), 0);
  assert.equal(calculatorSteps("{not json"), null);
  assert.equal(calculatorSteps(JSON.stringify({ question: "q" })), null);
  assert.equal(calculatorSteps("[1,2]"), null);
});

test("pickByCalculatorSteps keeps lines as written, in file order, only those with min…max steps, the same for a seed", () => {
  const lines = [
    line("a", "#### 1"),
    line("b", "<<1+1=2>>2\n#### 2"),
    line("c", "<<1+1=2>>2 <<2+1=3>>3\n#### 3"),
    line("d", "<<1+1=2>>2 <<2+1=3>>3 <<3+1=4>>4\n#### 4"),
    line("e", "<<4+1=5>>5\n#### 5"),
    "",
    '{"question": "f", "answer": "<<5+1=6>>6\\n#### 6", "extra": 1}',
  ];
  const text = lines.join("\r\n");
  const all = pickByCalculatorSteps(text, { minSteps: 1, maxSteps: 2, count: 10, seed: 1 });
  assert.deepEqual(all.lines, [lines[1], lines[2], lines[4], lines[6]]);
  assert.equal(all.eligible, 4);
  assert.equal(all.total, 6);
  const some = pickByCalculatorSteps(text, { minSteps: 1, maxSteps: 2, count: 2, seed: 7 });
  assert.equal(some.lines.length, 2);
  assert.deepEqual(some.lines, pickByCalculatorSteps(text, { minSteps: 1, maxSteps: 2, count: 2, seed: 7 }).lines);
  assert.ok(some.lines.every((l) => all.lines.includes(l)));
  assert.ok(all.lines.indexOf(some.lines[0]!) < all.lines.indexOf(some.lines[1]!), "file order");
  const seeds = new Set(Array.from({ length: 8 }, (_, s) => pickByCalculatorSteps(text, { minSteps: 1, maxSteps: 2, count: 2, seed: s }).lines.join("|")));
  assert.ok(seeds.size > 1, "the seed picks");
});

test("GSM8K: 2579 train and 422 test problems have one or two calculator steps (the real-model demo's pool)", { skip: gsm8kDir() ? false : GSM8K_ABSENT }, () => {
  const dir = gsm8kDir()!;
  const train = pickByCalculatorSteps(readFileSync(join(dir, "train.jsonl"), "utf8"), { minSteps: 1, maxSteps: 2, count: 64, seed: 2026 });
  const test_ = pickByCalculatorSteps(readFileSync(join(dir, "test.jsonl"), "utf8"), { minSteps: 1, maxSteps: 2, count: 80, seed: 2027 });
  assert.deepEqual([train.total, train.eligible, train.lines.length], [7473, 2579, 64]);
  assert.deepEqual([test_.total, test_.eligible, test_.lines.length], [1319, 422, 80]);
});

test("wilson: 95% intervals as computed by hand (15/148 → 6.24-16.05%; 0/20 → 0-16.11%)", () => {
  const [lo, hi] = wilson(15, 148);
  assert.ok(Math.abs(lo - 6.239) < 0.01 && Math.abs(hi - 16.049) < 0.01, `${lo} ${hi}`);
  const [lo0, hi0] = wilson(0, 20);
  assert.ok(lo0 === 0 && Math.abs(hi0 - 16.11) < 0.05, `${lo0} ${hi0}`);
  assert.deepEqual(wilson(0, 0), [0, 100]);
});
