import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint, stopTokenIds, type Checkpoint } from "../../../src/core/model/checkpoint";
import { readWeightLayout } from "../../../src/core/model/modelFolder";
import { readSafetensors, writeSafetensors } from "../../../src/core/model/safetensors";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { tempDir } from "../../helpers/paths";
import { writeHfFolder, type WrittenFolder } from "./hfFolder";

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));

/** Same float32 bits (NaN-safe, and -0 distinct from 0). */
function assertSameFloats(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), what);
}

function assertLoadsAsWritten(ckpt: Checkpoint, written: WrittenFolder, skip: (name: string) => boolean = () => false): void {
  const names = [...written.expected.keys()].filter((n) => !skip(n));
  assert.deepEqual([...ckpt.weights.keys()].sort(), names.sort());
  for (const name of names) {
    const w = ckpt.weights.get(name)!;
    assert.deepEqual(w.shape, written.stored.get(name)!.shape, name);
    assertSameFloats(w.data, written.expected.get(name)!, name);
  }
}

/** Every tensor of a saved folder, as stored, across whatever files it was written to. */
function storedTensors(dir: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const file of readWeightLayout(dir).files) {
    for (const [name, t] of readSafetensors(file.path).tensors) out.set(name, { dtype: t.dtype, shape: t.shape, bytes: Buffer.from(t.bytes) });
  }
  return out;
}

const withoutOwnKeys = (c: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(c).filter(([k]) => !k.startsWith("selftrain_")));
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
const weightFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes("safetensors")).sort();

test("a bf16 folder loads to the exact values of its bf16 bits and saves back in its family: same config, bf16 bit for bit", (t) => {
  const dir = tempDir(t);
  const written = writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16" });
  const ckpt = loadCheckpoint(join(dir, "src"));
  assertLoadsAsWritten(ckpt, written);
  assert.equal(ckpt.source?.dtype, "BF16");
  assert.deepEqual(ckpt.source?.config, written.config);
  assert.deepEqual(ckpt.source?.generationConfig, written.generationConfig);
  assert.deepEqual(stopTokenIds(ckpt), [2, 5, 7]);

  saveCheckpoint(join(dir, "out"), ckpt, { round: "1", stage: "sft" });
  const out = join(dir, "out");
  const saved = readJson(join(out, "config.json"));
  assert.deepEqual(withoutOwnKeys(saved), written.config, "config.json is the source's apart from our keys");
  assert.equal(saved["selftrain_format_version"], 1);
  assert.deepEqual(readJson(join(out, "generation_config.json")), written.generationConfig);
  assert.deepEqual(weightFiles(out), ["model.safetensors"]);
  const file = readSafetensors(join(out, "model.safetensors"));
  assert.equal(file.metadata["format"], "pt");
  assert.equal(file.metadata["stage"], "sft");
  const tensors = storedTensors(out);
  assert.deepEqual([...tensors.keys()].sort(), [...written.stored.keys()].sort());
  for (const [name, t] of written.stored) {
    const got = tensors.get(name)!;
    assert.equal(got.dtype, "BF16", name);
    assert.ok(got.bytes.equals(Buffer.from(t.bytes)), `${name}: bf16 -> f32 -> bf16 is bit-exact`);
  }
  const again = loadCheckpoint(out);
  for (const [name, w] of ckpt.weights) assertSameFloats(again.weights.get(name)!.data, w.data, name);
  assert.deepEqual(again.config, ckpt.config);
});

test("a sharded bf16 folder loads through its index; saves shard with an HF index; re-saves leave no stale shards", (t) => {
  const dir = tempDir(t);
  const written = writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16", shards: 3, seed: 3 });
  const ckpt = loadCheckpoint(join(dir, "src"));
  assertLoadsAsWritten(ckpt, written);
  assert.equal(ckpt.source?.dtype, "BF16");

  const out = join(dir, "out");
  const totalBytes = [...written.stored.values()].reduce((s, x) => s + x.bytes.length, 0);
  const embedBytes = written.stored.get("model.embed_tokens.weight")!.bytes.length;
  saveCheckpoint(out, ckpt, {}, { maxShardBytes: embedBytes + 100 }); // embeddings alone, then layers, then the head alone
  const index = readJson(join(out, "model.safetensors.index.json")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  assert.deepEqual(Object.keys(index), ["metadata", "weight_map"]);
  assert.equal(index.metadata.total_size, totalBytes);
  const shardNames = [...new Set(Object.values(index.weight_map))].sort();
  const n = shardNames.length;
  assert.ok(n >= 3, `${n} shards`);
  assert.deepEqual(shardNames, Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`));
  assert.deepEqual(weightFiles(out), [...shardNames, "model.safetensors.index.json"].sort());
  assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).sort(), "weight_map keys sorted as huggingface_hub writes them");
  assert.equal(index.weight_map["model.embed_tokens.weight"], shardNames[0]);
  assert.equal(index.weight_map["lm_head.weight"], shardNames[n - 1]);
  for (const shard of shardNames) {
    const f = readSafetensors(join(out, shard));
    assert.deepEqual(f.metadata["format"], "pt");
    assert.deepEqual([...f.tensors.keys()].sort(), Object.keys(index.weight_map).filter((k) => index.weight_map[k] === shard).sort(), shard);
    for (const [name, tensor] of f.tensors) assert.ok(Buffer.from(tensor.bytes).equals(Buffer.from(written.stored.get(name)!.bytes)), name);
  }
  assert.deepEqual(withoutOwnKeys(readJson(join(out, "config.json"))), written.config);
  assertLoadsAsWritten(loadCheckpoint(out), written);

  // Re-save into the same folder, sharded differently: the old shards must go, the index names only what exists.
  saveCheckpoint(out, ckpt, {}, { maxShardBytes: Math.ceil(totalBytes / 2) + 100 });
  const index2 = readJson(join(out, "model.safetensors.index.json")) as { weight_map: Record<string, string> };
  const shards2 = [...new Set(Object.values(index2.weight_map))].sort();
  assert.equal(shards2.length, 2);
  assert.deepEqual(weightFiles(out), [...shards2, "model.safetensors.index.json"].sort());
  assertLoadsAsWritten(loadCheckpoint(out), written);
  // And back to one file (the default limit): no index, no shards.
  saveCheckpoint(out, ckpt);
  assert.deepEqual(weightFiles(out), ["model.safetensors"]);
  assertLoadsAsWritten(loadCheckpoint(out), written);
  assert.deepEqual(readdirSync(out).filter((f) => f.includes(".tmp")), [], "no temporary files left");
});

test("an f16 folder loads exactly (subnormals included) and saves as f16; asking for f32 writes f32 and says so in torch_dtype", (t) => {
  const dir = tempDir(t);
  const written = writeHfFolder(join(dir, "src"), tokenizer, { dtype: "F16", generationConfig: null });
  const ckpt = loadCheckpoint(join(dir, "src"));
  assertLoadsAsWritten(ckpt, written);
  assert.equal(ckpt.source?.dtype, "F16");
  assert.equal(ckpt.source?.generationConfig, undefined);
  assert.deepEqual(stopTokenIds(ckpt), [2, 5]);
  saveCheckpoint(join(dir, "f16"), ckpt);
  for (const [name, s] of storedTensors(join(dir, "f16"))) {
    assert.equal(s.dtype, "F16", name);
    assert.ok(s.bytes.equals(Buffer.from(written.stored.get(name)!.bytes)), `${name}: f16 -> f32 -> f16 is bit-exact`);
  }
  assert.equal(existsSync(join(dir, "f16", "generation_config.json")), false);
  saveCheckpoint(join(dir, "f32"), ckpt, {}, { dtype: "F32" });
  assert.equal(readJson(join(dir, "f32", "config.json"))["torch_dtype"], "float32");
  for (const [name, s] of storedTensors(join(dir, "f32"))) assert.equal(s.dtype, "F32", name);
  const back = loadCheckpoint(join(dir, "f32"));
  assert.equal(back.source?.dtype, "F32");
  for (const [name, w] of ckpt.weights) assertSameFloats(back.weights.get(name)!.data, w.data, name);
});

test("tied folders: without lm_head they load; one carrying lm_head (and rotary tables) drops them; neither saves lm_head", (t) => {
  const dir = tempDir(t);
  for (const [name, spec] of [["plain", { dtype: "BF16", tied: true }], ["withHead", { dtype: "BF16", tied: true, tiedHead: true, invFreq: true, shards: 2 }]] as const) {
    const written = writeHfFolder(join(dir, name), tokenizer, spec);
    const ckpt = loadCheckpoint(join(dir, name));
    assertLoadsAsWritten(ckpt, written, (n) => n === "lm_head.weight" || n.endsWith("rotary_emb.inv_freq"));
    assert.equal(ckpt.weights.has("lm_head.weight"), false, name);
    saveCheckpoint(join(dir, `${name}-out`), ckpt);
    const saved = storedTensors(join(dir, `${name}-out`));
    assert.equal(saved.has("lm_head.weight"), false, name);
    assert.equal([...saved.keys()].some((n) => n.includes("inv_freq")), false, name);
    assert.equal(saved.size, ckpt.weights.size, name);
  }
});

test("broken folders give one-line errors naming the file and the tensor", (t) => {
  const dir = tempDir(t);
  const fresh = (name: string, spec: Parameters<typeof writeHfFolder>[2] = { dtype: "BF16", shards: 3 }): string => {
    writeHfFolder(join(dir, name), tokenizer, spec);
    return join(dir, name);
  };
  const oneLine = (pattern: RegExp) => (e: unknown): boolean => {
    assert.ok(e instanceof Error);
    assert.ok(!e.message.includes("\n"), e.message);
    assert.match(e.message, pattern);
    return true;
  };
  const indexOf = (d: string): { metadata: unknown; weight_map: Record<string, string> } => JSON.parse(readFileSync(join(d, "model.safetensors.index.json"), "utf8"));
  const writeIndex = (d: string, index: unknown): void => writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify(index));

  const missingShard = fresh("missing-shard");
  rmSync(join(missingShard, "model-00002-of-00003.safetensors"));
  assert.throws(() => loadCheckpoint(missingShard), oneLine(/model\.safetensors\.index\.json: shard model-00002-of-00003\.safetensors \(holding model\.layers\.\d+\.[\w.]+ and \d+ more\) does not exist/));

  const absent = fresh("absent-from-shard");
  const idx = indexOf(absent);
  idx.weight_map["model.layers.1.mlp.up_proj.weight"] = "model-00001-of-00003.safetensors"; // the index lies about where it is
  writeIndex(absent, idx);
  assert.throws(() => loadCheckpoint(absent), oneLine(/model-00001-of-00003\.safetensors: no tensor model\.layers\.1\.mlp\.up_proj\.weight, which model\.safetensors\.index\.json places in this file/));

  const missing = fresh("missing-tensor");
  const idx2 = indexOf(missing);
  delete idx2.weight_map["model.layers.0.self_attn.k_proj.weight"];
  writeIndex(missing, idx2);
  assert.throws(() => loadCheckpoint(missing), oneLine(/model\.safetensors\.index\.json: missing parameter model\.layers\.0\.self_attn\.k_proj\.weight/));

  const shape = fresh("wrong-shape");
  const where = indexOf(shape).weight_map["model.layers.1.mlp.down_proj.weight"]!;
  const shard = readSafetensors(join(shape, where));
  const tensors = new Map(shard.tensors);
  tensors.set("model.layers.1.mlp.down_proj.weight", { dtype: "BF16", shape: [24, 16], bytes: new Uint8Array(24 * 16 * 2) }); // transposed
  writeSafetensors(join(shape, where), tensors, shard.metadata);
  assert.throws(() => loadCheckpoint(shape), oneLine(new RegExp(`model\\.layers\\.1\\.mlp\\.down_proj\\.weight has shape \\[24,16\\] but the config needs \\[16,24\\] \\(stored in ${where.replace(/\./g, "\\.")}\\)`)));

  const single = fresh("single-wrong-shape", { dtype: "BF16" });
  writeFileSync(join(single, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(single, "config.json"), "utf8")), intermediate_size: 32 }));
  assert.throws(() => loadCheckpoint(single), oneLine(/config\.json: intermediate_size is 32, but model\.layers\.0\.mlp\.up_proj\.weight holds 24 rows/));

  const escape = fresh("escaping-index");
  const idx3 = indexOf(escape);
  idx3.weight_map["model.norm.weight"] = "../elsewhere.safetensors";
  writeIndex(escape, idx3);
  assert.throws(() => loadCheckpoint(escape), oneLine(/weight_map\["model\.norm\.weight"\] = "\.\.\/elsewhere\.safetensors" is not a file name in this folder/));

  const none = fresh("no-weights", { dtype: "BF16" });
  renameSync(join(none, "model.safetensors"), join(none, "weights.bin"));
  assert.throws(() => loadCheckpoint(none), oneLine(/no model\.safetensors \(nor model\.safetensors\.index\.json/));

  const truncated = fresh("truncated", { dtype: "BF16" });
  const bytes = readFileSync(join(truncated, "model.safetensors"));
  writeFileSync(join(truncated, "model.safetensors"), bytes.subarray(0, bytes.length - 10));
  assert.throws(() => loadCheckpoint(truncated), oneLine(/model\.safetensors: tensor "[\w.]+": data_offsets \[\d+, \d+\] out of range/));
});

test("a save that fails part-way leaves the folder without config.json, so it reads as unfinished", (t) => {
  const dir = tempDir(t);
  writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16" });
  const ckpt = loadCheckpoint(join(dir, "src"));
  saveCheckpoint(join(dir, "out"), ckpt);
  assert.ok(existsSync(join(dir, "out", "config.json")));
  const broken = new Map(ckpt.weights);
  broken.set("model.norm.weight", { shape: [16], data: new Float32Array(3) });
  assert.throws(() => saveCheckpoint(join(dir, "out"), { ...ckpt, weights: broken }), /3 values do not fit shape \[16\]/);
  assert.equal(existsSync(join(dir, "out", "config.json")), false);
  assert.throws(() => loadCheckpoint(join(dir, "out")), /no config\.json \(not a model folder, or an unfinished checkpoint\)/);
});

test("saving refuses a model whose config no longer matches its source config.json", (t) => {
  const dir = tempDir(t);
  writeHfFolder(join(dir, "src"), tokenizer, { dtype: "BF16" });
  const ckpt = loadCheckpoint(join(dir, "src"));
  assert.throws(() => saveCheckpoint(join(dir, "out"), { ...ckpt, config: { ...ckpt.config, rope_theta: 10000 } }), /rope_theta \(10000\) differs from its source config\.json's \(500000\)/);
  // Without its source it saves in our own format: our config, float32, one file.
  const { source: _source, ...ours } = ckpt;
  saveCheckpoint(join(dir, "ours"), ours);
  const config = readJson(join(dir, "ours", "config.json"));
  assert.equal(config["torch_dtype"], "float32");
  assert.equal(config["transformers_version"], undefined);
  assert.deepEqual([...storedTensors(join(dir, "ours")).values()].map((s) => s.dtype).filter((d) => d !== "F32"), []);
});

test("stop ids merge config.json and generation_config.json (a number or a list each), first the config's, without repeats", () => {
  const config = { eos_token_id: 9 } as Checkpoint["config"];
  assert.deepEqual(stopTokenIds({ config }), [9]);
  assert.deepEqual(stopTokenIds({ config, source: { config: { eos_token_id: 9 }, dtype: "BF16" } }), [9]);
  assert.deepEqual(stopTokenIds({ config, source: { config: { eos_token_id: [9, 4] }, dtype: "BF16", generationConfig: { eos_token_id: 11 } } }), [9, 4, 11]);
  assert.deepEqual(stopTokenIds({ config, source: { config: { eos_token_id: 9 }, dtype: "BF16", generationConfig: { eos_token_id: [11, 9, 4, "x", -1, 2.5] } } }), [9, 11, 4]);
  assert.deepEqual(stopTokenIds({ config, source: { config: {}, dtype: "F32", generationConfig: {} } }), [9]);
});
