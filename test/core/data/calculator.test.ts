import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluate, formatResult, MAX_EXPRESSION_LENGTH } from "../../../src/core/data/calculator";
import { checkArithmetic, pendingCalculation, calculatorCompletion, findAnnotations } from "../../../src/core/data/annotations";

function value(expr: string): number {
  const r = evaluate(expr);
  assert.ok(r.ok, `expected ${expr} to evaluate, got ${JSON.stringify(r)}`);
  return r.value;
}

test("evaluates arithmetic with precedence, parentheses, unary minus, decimals, spaces, thousands commas", () => {
  assert.equal(value("48/2"), 24);
  assert.equal(value("2+3*4"), 14);
  assert.equal(value("(2+3)*4"), 20);
  assert.equal(value("10-4-3"), 3);
  assert.equal(value("64/4/2"), 8);
  assert.equal(value("-3+5"), 2);
  assert.equal(value("2*-3"), -6);
  assert.equal(value(" 0.2 * 50 "), 10);
  assert.equal(value(".5*4"), 2);
  assert.equal(value("1,000*3"), 3000);
  assert.equal(value("1,234,567+1"), 1234568);
  assert.ok(Math.abs(value("10/3") - 3.3333333) < 1e-6);
});

test("rejects anything outside the grammar instead of running it", () => {
  for (const bad of ["require('fs')", "process.exit(1)", "2**10", "Math.PI", "1+", "(1+2", "1 2", "x*3", "", "   ", "1,00", "2^3", "constructor"]) {
    const r = evaluate(bad);
    assert.equal(r.ok, false, `${JSON.stringify(bad)} should be rejected`);
  }
  const r = evaluate("require('fs').readFileSync('/etc/passwd')");
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /expected a number/);
});

test("division by zero gives no result", () => {
  const r = evaluate("5/0");
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /division by zero/);
  assert.equal(evaluate("1/(3-3)").ok, false);
  assert.equal(calculatorCompletion("1/0"), null);
});

test("bounds input length and nesting depth", () => {
  const long = "1+".repeat(5000) + "1"; // 10k characters
  assert.ok(long.length > 10_000 - 1);
  const r = evaluate(long);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, new RegExp(`longer than ${MAX_EXPRESSION_LENGTH}`));
  assert.equal(evaluate("(".repeat(100) + "1" + ")".repeat(100)).ok, false);
  assert.equal(evaluate("-".repeat(100) + "1").ok, false);
  assert.equal(value("((((1+2))))"), 3);
});

test("formats results as the paper's calculator: integer within 1e-4, else two decimals", () => {
  assert.equal(formatResult(24), "24");
  assert.equal(formatResult(23.99999), "24");
  assert.equal(formatResult(10 / 3), "3.33");
  assert.equal(formatResult(2.5), "2.5");
  assert.equal(formatResult(-0.00001), "0");
  assert.equal(formatResult(-7.126), "-7.13");
});

test("finds annotations and flags wrong arithmetic", () => {
  const text = "She has 3*4 = <<3*4=13>>13 eggs and 13+2 = <<13+2=15>>15 in all, 10/3=<<10/3=3.33>>3.33, <<2x3=6>>6.";
  const checked = checkArithmetic(text);
  assert.equal(checked.length, 4);
  assert.deepEqual(checked.map((c) => c.verdict.kind), ["wrong", "ok", "ok", "unparseable"]);
  const wrong = checked[0]!;
  assert.equal(wrong.verdict.kind === "wrong" && wrong.verdict.expected, "12");
  assert.equal(text.slice(wrong.start, wrong.end), "<<3*4=13>>");
  assert.equal(findAnnotations("no annotations here").length, 0);
});

test("calculator trigger fires only on a complete `<<expr=` of calculator characters", () => {
  assert.equal(pendingCalculation("She sells 16 - 3 = <<16-3="), "16-3");
  assert.equal(pendingCalculation("a <<1+1=2>> b = "), null);
  assert.equal(pendingCalculation("x = "), null);
  assert.equal(pendingCalculation("<<a+b="), null);
  assert.equal(pendingCalculation("<<16-3"), null);
  assert.equal(calculatorCompletion("16-3"), "13>>");
  assert.equal(calculatorCompletion("10/4"), "2.5>>");
});

test("'//' is floor division, as in GSM8K's own calculator (toward −∞, by zero refused)", () => {
  const value = (e: string): number | string => {
    const r = evaluate(e);
    return r.ok ? r.value : r.reason;
  };
  assert.deepEqual(["560//10", "180//3", "7//2", "-7//2", "2*7//3", "7.5//2"].map(value), [56, 60, 3, -4, 4, 3]);
  assert.equal(value("1//0"), "division by zero");
  assert.equal(evaluate("3///2").ok, false);
  assert.deepEqual(checkArithmetic("He kept <<560//10=56>>56 and <<180//3=61>>61.").map((c) => c.verdict.kind), ["ok", "wrong"]);
});
