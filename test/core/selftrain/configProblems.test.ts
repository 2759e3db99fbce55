// A config.json with mistakes in it: each mistake said in the words the explorer shows, with the place in the file
// that "Open config.json" goes to, and the rest of the file still read for what does not depend on the mistakes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configProblems, groupIntact, readConfigProblems } from "../../../src/core/selftrain/configProblems";
import { defaultConfig, parseConfig } from "../../../src/core/selftrain/config";
import { tempDir } from "../../helpers/paths";

const FILE = "/ws/.selftrain/config.json";

/** config.json as init writes it (two-space JSON), with `edit` applied to the defaults. */
function written(edit: (c: Record<string, Record<string, unknown>>) => void): string {
  const c = JSON.parse(JSON.stringify(defaultConfig())) as Record<string, Record<string, unknown>>;
  edit(c);
  return JSON.stringify(c, null, 2);
}

/** The text a problem's place selects. */
function selected(text: string, p: { line: number; character: number; length: number }): string {
  return text.split("\n")[p.line]!.slice(p.character, p.character + p.length);
}

test("issue 28's typo: the problem in the explorer's words, at the key, and everything else still read", () => {
  const text = written((c) => {
    delete c["sampling"]!["maxNewTokens"];
    c["sampling"]!["maxNewToken"] = 120;
    c["data"]!["devSize"] = 50;
  });
  const read = configProblems(text, FILE);
  assert.equal(read.problems.length, 1);
  const [p] = read.problems;
  assert.equal(p!.message, "sampling.maxNewToken is not a setting; did you mean maxNewTokens?");
  assert.equal(p!.setting, "sampling.maxNewToken");
  assert.equal(p!.file, FILE);
  assert.equal(selected(text, p!), "maxNewToken");
  assert.equal(text.split("\n")[p!.line], '    "maxNewToken": 120');
  // The rest is the file's: its data settings are read, the mistaken key left out (maxNewTokens at its default).
  assert.deepEqual(read.dropped, ["sampling.maxNewToken"]);
  assert.equal(read.config?.data.devSize, 50);
  assert.equal(read.config?.sampling.maxNewTokens, defaultConfig().sampling.maxNewTokens);
  assert.ok(groupIntact(read, "data") && groupIntact(read, "model"));
  assert.ok(!groupIntact(read, "sampling"));
});

test("every problem is listed in the file's order, each at its own key; a group's settings that were left out leave that group not intact", () => {
  const text = written((c) => {
    c["model"]!["layers"] = 0;
    c["dpo"]!["betta"] = 0.2;
    c["seed"] = "one" as unknown as Record<string, unknown>;
  });
  const read = configProblems(text, FILE);
  // In the file's order, not the order they were found in.
  assert.deepEqual(read.problems.map((p) => p.message), ['seed must be a number, not "one"', "model.layers must be between 1 and 256, not 0", "dpo.betta is not a setting; did you mean beta?"]);
  assert.deepEqual(read.problems.map((p) => selected(text, p)), ["seed", "layers", "betta"]);
  assert.ok(read.config !== null);
  assert.ok(groupIntact(read, "data"));
  assert.ok(!groupIntact(read, "model"), "the model row would show a model the file does not describe");
});

test("a setting that only breaks a rule with another is placed at its key, or its group's where the file leaves it out", () => {
  const text = written((c) => {
    c["dpo"] = { batchSize: 8 }; // micro-batches of 16 (the default) no longer fit
  });
  const read = configProblems(text, FILE);
  assert.equal(read.problems[0]!.message, "dpo.microBatchSize must be between 1 and dpo.batchSize (8)");
  assert.equal(selected(text, read.problems[0]!), "dpo");
  assert.deepEqual(read.dropped, ["dpo"]);
  assert.equal(read.config?.dpo.batchSize, defaultConfig().dpo.batchSize);
});

test("a file that is not JSON, or not an object, gives one problem and no config; a good file none", () => {
  const broken = '{\n  "mode": "st",\n  "seed": 1,,\n}';
  const read = configProblems(broken, FILE);
  assert.equal(read.config, null);
  assert.equal(read.problems.length, 1);
  assert.match(read.problems[0]!.message, /^not valid JSON \(/);
  assert.equal(read.problems[0]!.setting, null);
  // Node names the offset where parsing stopped: the second comma.
  assert.deepEqual([read.problems[0]!.line, read.problems[0]!.character], [2, 12]);
  // Some of JSON.parse's messages name no position: the place is found by reading the text.
  const literal = configProblems('{\n  "sampling": {\n    "calculator": tru\n  }\n}', FILE);
  assert.deepEqual([literal.problems[0]!.line, literal.problems[0]!.character], [2, 18]);
  const array = configProblems("[]", FILE);
  assert.deepEqual([array.config, array.problems.map((p) => p.message)], [null, ["the config must be an object"]]);
  const good = configProblems(written(() => undefined), FILE);
  assert.deepEqual([good.problems, good.dropped], [[], []]);
  assert.deepEqual(good.config, parseConfig(defaultConfig()));
});

test("readConfigProblems reads the file, and says so when config.json is a folder", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ sampling: { topP: 0 } }));
  assert.deepEqual(readConfigProblems(file).problems.map((p) => [p.message, p.line, p.character]), [["sampling.topP must be positive, not 0", 0, 14]]);
  const folder = join(dir, "folder", "config.json");
  mkdirSync(folder, { recursive: true });
  const read = readConfigProblems(folder);
  assert.deepEqual([read.config, read.problems.map((p) => p.message)], [null, ["a folder, not a file: remove it or move it elsewhere"]]);
});

test("an unknown setting's message names the nearest setting beside it, or the same name elsewhere, or what is there", () => {
  const reason = (raw: unknown): string => configProblems(JSON.stringify(raw), FILE).problems[0]!.message;
  assert.equal(reason({ sampling: { temprature: 0.5 } }), "sampling.temprature is not a setting; did you mean temperature?");
  assert.equal(reason({ maxNewTokens: 100 }), "maxNewTokens is not a setting; did you mean sampling.maxNewTokens?");
  assert.equal(reason({ sampling: { beta: 0.1 } }), "sampling.beta is not a setting; did you mean dpo.beta?");
  assert.equal(reason({ learningRate: 1e-5 }), "learningRate is not a setting; did you mean warmup.learningRate, dpo.learningRate or sft.learningRate?");
  assert.equal(reason({ pairs: { whatever: 1 } }), "pairs.whatever is not a setting; pairs has maxPerQuestion, duplicateThreshold");
  // Names every object has are not settings either; JSON's own "__proto__" key is left out, not made a prototype.
  const proto = configProblems('{"__proto__": {"x": 1}, "toString": 2}', FILE);
  assert.deepEqual(proto.problems.map((p) => p.message.split(";")[0]), ["__proto__ is not a setting", "toString is not a setting"]);
  assert.match(proto.problems[1]!.message, /; the settings are mode, seed, data, model, engine, /);
  assert.deepEqual(proto.config, defaultConfig());
});
