// A checkpoint saved in another type than its source's (a run's float32 stage checkpoints of a bf16 model) says
// so in config.json and keeps the source's type, so that export can write the model back as it came, in the
// source's weight files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint, sourceDtype } from "../../../src/core/model/checkpoint";
import { readWeightLayout, weightFilesOf } from "../../../src/core/model/modelFolder";
import { readSafetensors } from "../../../src/core/model/safetensors";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { tempDir } from "../../helpers/paths";
import { writeHfFolder } from "./hfFolder";

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
const withoutOwnKeys = (c: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(c).filter(([k]) => !k.startsWith("selftrain_")));

/** Every tensor of a folder as stored: dtype, bytes and the file holding it. */
function stored(dir: string): Map<string, { dtype: string; bytes: Buffer; file: string }> {
  const out = new Map<string, { dtype: string; bytes: Buffer; file: string }>();
  for (const f of readWeightLayout(dir).files) {
    for (const [name, t] of readSafetensors(f.path).tensors) out.set(name, { dtype: t.dtype, bytes: Buffer.from(t.bytes), file: f.path.slice(dir.length + 1) });
  }
  return out;
}

test("a bf16 model saved as float32 says float32 and keeps bfloat16 as its source's type, through later float32 saves; saved back as bf16 it is the source again", (t) => {
  const dir = tempDir(t);
  const written = writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16", config: { dtype: "bfloat16" } });
  const src = loadCheckpoint(join(dir, "src"));
  assert.equal(sourceDtype(src.source), "BF16");

  saveCheckpoint(join(dir, "warmup"), src, {}, { dtype: "F32" });
  const warm = readJson(join(dir, "warmup", "config.json"));
  assert.equal(warm["torch_dtype"], "float32");
  assert.equal(warm["dtype"], "float32", "the newer key too");
  assert.equal(warm["selftrain_source_dtype"], "bfloat16");
  const warmup = loadCheckpoint(join(dir, "warmup"));
  assert.equal(warmup.source?.dtype, "F32");
  assert.equal(sourceDtype(warmup.source), "BF16", "the type it came in, not the one it is stored in");

  // A later stage from it, float32 again (the weights nudged below a bf16 step): the source's type stays.
  const nudged = new Map([...warmup.weights].map(([n, w]) => [n, { shape: w.shape, data: w.data.map((x) => x * (1 + 2 ** -20)) }]));
  saveCheckpoint(join(dir, "dpo"), { ...warmup, weights: nudged }, {}, { dtype: "F32" });
  assert.equal(readJson(join(dir, "dpo", "config.json"))["selftrain_source_dtype"], "bfloat16");
  const dpo = loadCheckpoint(join(dir, "dpo"));
  assert.equal(sourceDtype(dpo.source), "BF16");
  for (const [n, w] of nudged) assert.deepEqual(dpo.weights.get(n)!.data, w.data, `${n}: float32 exactly`);

  // Back in the source's type: config.json is the source's again, and the bf16 of the unnudged weights is the source's bytes.
  saveCheckpoint(join(dir, "out"), warmup, {}, { dtype: sourceDtype(warmup.source) });
  const out = readJson(join(dir, "out", "config.json"));
  assert.deepEqual(withoutOwnKeys(out), written.config);
  assert.equal(out["selftrain_source_dtype"], undefined);
  for (const [name, s] of stored(join(dir, "out"))) {
    assert.equal(s.dtype, "BF16", name);
    assert.ok(s.bytes.equals(Buffer.from(written.stored.get(name)!.bytes)), name);
  }
});

test("a model we created is float32 at the source: no source type is noted", (t) => {
  const dir = tempDir(t);
  writeHfFolder(join(dir, "src"), tokenizer, { dtype: "F32" });
  const src = loadCheckpoint(join(dir, "src"));
  const { source: _source, ...ours } = src;
  assert.equal(sourceDtype(undefined), "F32");
  saveCheckpoint(join(dir, "ours"), ours, {}, { dtype: "F32" });
  assert.equal(readJson(join(dir, "ours", "config.json"))["selftrain_source_dtype"], undefined);
  assert.equal(sourceDtype(loadCheckpoint(join(dir, "ours")).source), "F32");
  saveCheckpoint(join(dir, "f32"), src, {}, { dtype: "F32" });
  assert.equal(readJson(join(dir, "f32", "config.json"))["selftrain_source_dtype"], undefined);
});

test("a selftrain_source_dtype that names no weight type is refused on load, naming the file", (t) => {
  const dir = tempDir(t);
  writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16", config: { selftrain_source_dtype: "int8" } });
  assert.throws(() => loadCheckpoint(join(dir, "src")), (e: Error) => e.message === `${join(dir, "src", "config.json")}: selftrain_source_dtype must be one of float32, bfloat16, float16, not "int8"`);
});

test("saving in another folder's layout writes its grouping of tensors into files, whatever the type; a layout missing a tensor is refused", (t) => {
  const dir = tempDir(t);
  // Split by tensor count, not by size: only a copy of the layout gives the same files.
  const written = writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16", shards: 3, tied: true, tiedHead: true });
  const src = loadCheckpoint(join(dir, "src"));
  const layout = weightFilesOf(join(dir, "src"));
  for (const dtype of ["F32", "BF16"] as const) {
    const out = join(dir, dtype);
    saveCheckpoint(out, src, {}, { dtype, layout });
    const index = readJson(join(out, "model.safetensors.index.json")) as { weight_map: Record<string, string> };
    const want = [...written.fileOf].filter(([n]) => n !== "lm_head.weight"); // tied: the head is not written
    assert.deepEqual(index.weight_map, Object.fromEntries(want.sort(([a], [b]) => (a < b ? -1 : 1))), dtype);
    for (const [name, s] of stored(out)) assert.equal(s.file, written.fileOf.get(name), `${dtype} ${name}`);
    assert.deepEqual(readdirSync(out).filter((f) => f.endsWith(".safetensors")).sort(), ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]);
  }
  // A one-file source gives one file, however large.
  writeHfFolder(join(dir, "single"), tokenizer, { dtype: "BF16", tied: true });
  saveCheckpoint(join(dir, "one"), src, {}, { dtype: "F32", layout: weightFilesOf(join(dir, "single")), maxShardBytes: 1 });
  assert.deepEqual(readdirSync(join(dir, "one")).filter((f) => f.includes("safetensors")), ["model.safetensors"]);

  const missing = new Map(layout);
  missing.delete("model.norm.weight");
  assert.throws(() => saveCheckpoint(join(dir, "bad"), src, {}, { layout: missing }), /cannot save in the layout given: it places no file for tensor model\.norm\.weight/);
});
