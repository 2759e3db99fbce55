// Finding a dotted setting's key in config.json's text, so "Open config.json" puts the cursor on it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonBreakOffset, locateJsonKey, positionAt } from "../../../src/core/util/jsonKeyLocation";

const text = JSON.stringify({ formatVersion: 1, data: { train: "data/train.jsonl" }, sampling: { dpoSamples: 5, maxNewToken: 300 }, dpo: { beta: 0.1 } }, null, 2);

/** The key's name as the location says it is written: the line's text at the character, for the length. */
function at(t: string, l: { line: number; character: number; length: number }): string {
  return t.split("\n")[l.line]!.slice(l.character, l.character + l.length);
}

test("a dotted key is found on its line and column, the name selected without its quotes", () => {
  const l = locateJsonKey(text, ["sampling", "maxNewToken"])!;
  assert.equal(at(text, l), "maxNewToken");
  assert.deepEqual([l.line, l.character, l.depth], [7, 5, 2]);
  assert.equal(text.slice(l.offset, l.offset + l.length), "maxNewToken");
  // The same name elsewhere is not taken for it: only the key under "dpo" is dpo.beta.
  const beta = locateJsonKey(text, ["dpo", "beta"])!;
  assert.equal(beta.line, 10);
  assert.equal(locateJsonKey(text, ["beta"]), null, "no top-level beta");
});

test("a setting the file leaves out is placed at its nearest enclosing key; one under no key of the file at nothing", () => {
  const l = locateJsonKey(text, ["sampling", "topP"])!;
  assert.deepEqual([at(text, l), l.depth], ["sampling", 1]);
  assert.equal(locateJsonKey(text, ["model", "layers"]), null);
  assert.equal(locateJsonKey(text, []), null);
});

test("escapes in keys, values that look like keys, arrays, one-line files, and the last of a key written twice", () => {
  const odd = '{"note": "\\"sampling\\": {", "list": [{"sampling": 1}, "x"], "sa\\u006dpling": {"topP": 1}}';
  const l = locateJsonKey(odd, ["sampling", "topP"])!;
  assert.equal(l.line, 0);
  assert.equal(odd.slice(l.offset, l.offset + l.length), "topP");
  assert.equal(l.depth, 2);
  const twice = '{"dpo": {"beta": 1},\n "dpo": {"steps": 2}}';
  const d = locateJsonKey(twice, ["dpo", "beta"])!;
  assert.deepEqual([d.line, d.depth], [1, 1], "JSON.parse keeps the second dpo, which has no beta");
});

test("a text that stops being JSON is read up to there", () => {
  const broken = '{\n  "sampling": {\n    "maxNewToken": 300,\n    "topP": ]\n';
  const l = locateJsonKey(broken, ["sampling", "maxNewToken"])!;
  assert.deepEqual([l.line, l.character, l.depth], [2, 5, 2]);
  assert.equal(locateJsonKey("", ["a"]), null);
  assert.equal(locateJsonKey("[1, 2", ["a"]), null);
  const deep = `{"a": ${"[".repeat(200_000)}${"]".repeat(200_000)}, "b": 1}`;
  assert.equal(locateJsonKey(deep, ["a"])?.depth, 1, "nesting deeper than the stack ends the reading, not the caller");
});

test("positionAt counts 0-based lines and characters, and clamps to the text", () => {
  assert.deepEqual(positionAt("ab\ncd\nef", 4), { offset: 4, line: 1, character: 1 });
  assert.deepEqual(positionAt("ab", 99), { offset: 2, line: 0, character: 2 });
  assert.deepEqual(positionAt("ab\r\ncd", 5), { offset: 5, line: 1, character: 1 });
});

test("jsonBreakOffset finds where a text stops being JSON, for JSON.parse messages that name no position", () => {
  assert.equal(jsonBreakOffset(text), null);
  assert.equal(jsonBreakOffset('{"a": tru}'), 6, "a misspelt literal");
  assert.equal(jsonBreakOffset('{"a": 1,, "b": 2}'), 8, "a second comma");
  assert.equal(jsonBreakOffset('{"a": 1} x'), 9, "text after the value");
  assert.equal(jsonBreakOffset('{"a": "open'), 11, "a string never closed");
  assert.equal(jsonBreakOffset('{"a": [1, 2}'), 11);
  assert.equal(jsonBreakOffset(" [1, -2.5e3, true, null, \"\\u00e9\"] "), null);
});
