import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint, loadCheckpoint } from "../../../src/core/model/checkpoint";
import { tinyConfig } from "../../../src/core/model/config";
import { initWeights } from "../../../src/core/model/weights";
import { readSafetensors } from "../../../src/core/model/safetensors";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { tempDir } from "../../helpers/paths";

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));
const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 });

test("a checkpoint saves and loads as a Hugging Face folder; loaded-then-saved tensors are byte-identical", (t) => {
  const dir = tempDir(t);
  const weights = initWeights(config, 4);
  saveCheckpoint(join(dir, "a"), { config, weights, tokenizer });
  const loaded = loadCheckpoint(join(dir, "a"));
  assert.deepEqual(loaded.config, config);
  for (const [name, w] of weights) assert.deepEqual(loaded.weights.get(name)!.data, w.data, name);
  assert.equal(loaded.tokenizer.decode(loaded.tokenizer.encode("Mia has 3")), "Mia has 3");
  saveCheckpoint(join(dir, "b"), loaded);
  const a = readSafetensors(join(dir, "a", "model.safetensors"));
  const b = readSafetensors(join(dir, "b", "model.safetensors"));
  assert.equal(a.tensors.size, b.tensors.size);
  for (const [name, ta] of a.tensors) assert.ok(Buffer.from(ta.bytes).equals(Buffer.from(b.tensors.get(name)!.bytes)), name);
  assert.ok(readFileSync(join(dir, "a", "model.safetensors")).equals(readFileSync(join(dir, "b", "model.safetensors"))));
  const hf = JSON.parse(readFileSync(join(dir, "a", "config.json"), "utf8"));
  assert.deepEqual(hf.architectures, ["LlamaForCausalLM"]);
});

test("broken checkpoints give errors that say what and where", (t) => {
  const dir = tempDir(t);
  assert.throws(() => loadCheckpoint(dir), /no config\.json/);
  saveCheckpoint(dir, { config, weights: initWeights(config, 1), tokenizer });
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, hidden_size: 32 }));
  // A size config.json gives is checked against the weights present and reported as the key it is.
  assert.throws(() => loadCheckpoint(dir), /config\.json: hidden_size is 32, but model\.embed_tokens\.weight holds rows of 16/);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, selftrain_format_version: 99 }));
  assert.throws(() => loadCheckpoint(dir), /checkpoint format 99 is newer/);
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  rmSync(join(dir, "model.safetensors"));
  assert.throws(() => loadCheckpoint(dir), /no model\.safetensors/);
});
