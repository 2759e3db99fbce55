// Every numeric setting of .selftrain/config.json has a range, checked when the file is read: a typo fails there,
// naming the file, the setting and the range, instead of inside a stage with an engine's message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, defaultConfig, parseConfig } from "../../../src/core/selftrain/config";
import type { SelfTrainConfig } from "../../../src/core/selftrain/configTypes";
import { loadRunData } from "../../../src/core/selftrain/runData";
import { tinyConfig } from "../../../src/core/model/config";
import { parameterCount } from "../../../src/core/model/architecture";
import { readWorkspaceConfig } from "../../../src/core/selftrain/workspace";
import { tinyWorkspace, configWithSetting } from "../../helpers/workspace";
import { tempDir } from "../../helpers/paths";


/** Paths of every numeric setting of a config. */
function numericPaths(o: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(o).flatMap(([k, v]) => (typeof v === "number" ? [`${prefix}${k}`] : typeof v === "object" && v !== null ? numericPaths(v as Record<string, unknown>, `${prefix}${k}.`) : []));
}

test("the inputs of issue 23 are refused when config.json is read, naming the file, the setting and its range", () => {
  const file = "ws/.selftrain/config.json";
  const cases: Array<[string, number, RegExp]> = [
    ["model.layers", 1e6, /^ws\/\.selftrain\/config\.json: model\.layers must be between 1 and 256, not 1000000$/],
    ["model.layers", 0, /model\.layers must be between 1 and 256, not 0$/],
    ["engine.threads", 100000, /engine\.threads must be between 0 and 512, not 100000$/],
    ["sampling.batchSize", 0, /sampling\.batchSize must be between 1 and 65,536, not 0$/],
    ["model.hiddenSize", 0, /model\.hiddenSize must be between 2 and 32,768, not 0$/],
    ["model.hiddenSize", 1e9, /model\.hiddenSize must be between 2 and 32,768, not 1000000000$/],
    ["model.maxPositions", 4, /model\.maxPositions must be between 8 and 1,048,576, not 4$/],
    ["model.vocabSize", 0, /model\.vocabSize must be between 259 and 1,048,576, not 0$/],
    ["data.devSize", 1e9, /data\.devSize must be between 0 and 10,000,000, not 1000000000$/],
    ["eval.passSamples", -1, /eval\.passSamples must not be negative \(0 means: greedy accuracy only\), not -1$/],
    ["sft.learningRate", 0, /sft\.learningRate must be positive/],
    ["dpo.beta", 0, /dpo\.beta must be positive, not 0$/],
    ["dpo.beta", 1000, /dpo\.beta must be above 0 and at most 100, not 1000$/],
  ];
  for (const [path, value, message] of cases) {
    assert.throws(() => parseConfig(configWithSetting(path, value), file), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${path} ${value}`);
  }
});

test("every numeric setting is bounded on both sides (learning rates below only), and the defaults, the pretrained defaults and the test workspace's settings are inside", async (t) => {
  const paths = numericPaths(defaultConfig() as unknown as Record<string, unknown>);
  assert.ok(paths.length > 40, `${paths.length} numeric settings`);
  for (const path of paths) {
    // A diverging learning rate fails its stage with the loss named (failures.test.ts raises one to 1e9 on purpose).
    for (const value of path.endsWith("learningRate") ? [-1] : [1e12, -1]) {
      assert.throws(() => parseConfig(configWithSetting(path, value)), (e: unknown) => e instanceof ConfigError && e.message.includes(path.split(".").at(-1)!), `${path} = ${value} was accepted`);
    }
  }
  assert.doesNotThrow(() => parseConfig(defaultConfig()));
  assert.doesNotThrow(() => parseConfig(defaultConfig("models/base")));
  const ws = await tinyWorkspace(tempDir(t));
  assert.doesNotThrow(() => readWorkspaceConfig(ws));
});

test("a new model's settings must hold its training sequences and multiply into a model a machine can hold; a model folder's sizes are its config.json's", () => {
  assert.throws(() => parseConfig({ model: { maxPositions: 200 }, warmup: { maxLength: 160 }, sft: { maxLength: 160 }, dpo: { maxLength: 256 } }), /model\.maxPositions is 200, shorter than dpo\.maxLength \(256\): the model could not take its training sequences/);
  assert.doesNotThrow(() => parseConfig({ model: { init: "models/base", maxPositions: 200 } }));
  assert.throws(() => parseConfig({ model: { hiddenSize: 12, heads: 4, kvHeads: 2 } }), /model\.hiddenSize \/ model\.heads is 3, but rotary embeddings need an even head dimension/);
  // Sizes each in range that multiply into a model no machine holds: counted (as parameterCount would) and refused.
  const huge = { vocabSize: 300_000, hiddenSize: 16384, intermediateSize: 65536, layers: 64, heads: 128, kvHeads: 8 };
  const count = parameterCount(tinyConfig(huge.vocabSize, { hidden_size: huge.hiddenSize, intermediate_size: huge.intermediateSize, num_hidden_layers: huge.layers, num_attention_heads: huge.heads, num_key_value_heads: huge.kvHeads }));
  assert.throws(() => parseConfig({ model: huge }), new RegExp(`config\\.json: model sizes give a new model of ${count.toLocaleString("en-US")} parameters, above the 2,000,000,000`));
  assert.doesNotThrow(() => parseConfig({ model: { ...huge, init: "models/base" } }), "a folder's sizes are its config.json's");
});

test("a dev set larger than a quarter of the data is cut, and the run's log says so; a test set the data cannot hold names data.testSize", async (t) => {
  const ws = await tinyWorkspace(tempDir(t)); // 44 training questions, a test file
  const c: SelfTrainConfig = readWorkspaceConfig(ws);
  const data = await loadRunData({ ...c, data: { ...c.data, devSize: 1000 } }, ws);
  assert.equal(data.dev.length, 11);
  assert.deepEqual(data.notes, ["data.devSize is 1000, more than a quarter of the 44 questions in data/train.jsonl: the dev set takes 11 of them"]);
  assert.deepEqual((await loadRunData(c, ws)).notes, []);
  await assert.rejects(loadRunData({ ...c, data: { ...c.data, test: "", testSize: 40 } }, ws), /data\.testSize is 40, but data\/train\.jsonl has 38 questions besides the dev set's 6: lower data\.testSize, or name a test file in data\.test/);
  assert.equal((await loadRunData({ ...c, data: { ...c.data, test: "", testSize: 38 } }, ws)).test.length, 38);
});
