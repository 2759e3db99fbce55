// What a model folder's config.json may say, and the checks `model inspect` and loading share: sizes against the
// weights present and against limits (before anything is sized by them), the weight headers, the tokenizer, and
// every weight value finite. Folders are written here, in each family's layout, with small random weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint } from "../../../src/core/model/checkpoint";
import { MODEL_LIMITS, validateConfig, type ModelConfig } from "../../../src/core/model/config";
import { inspectModelFolder, ModelFolderError } from "../../../src/core/model/inspectModel";
import { fromFloat32, openSafetensors, readSafetensors, writeSafetensors, type StoredTensor } from "../../../src/core/model/safetensors";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { FAMILIES, FAMILY_HF_CONFIGS, randomWeights } from "../engine/engineFixtures";
import { tempDir } from "../../helpers/paths";

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));

/** A folder of `family` saved as we save models (bf16 unless told), sharded when maxShardBytes is small. */
function folder(dir: string, c: ModelConfig, options: { dtype?: "F32" | "BF16" | "F16"; maxShardBytes?: number } = {}): string {
  saveCheckpoint(dir, { config: c, weights: randomWeights(c, 3), tokenizer }, {}, { dtype: options.dtype ?? "BF16", ...(options.maxShardBytes ? { maxShardBytes: options.maxShardBytes } : {}) });
  return dir;
}

const editJson = (file: string, change: (o: Record<string, unknown>) => void): void => {
  const o = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  change(o);
  writeFileSync(file, JSON.stringify(o, null, 2));
};

/** Rewrites one tensor of a single-file folder. */
function editTensor(dir: string, name: string, change: (t: StoredTensor) => StoredTensor | null): void {
  const file = join(dir, "model.safetensors");
  const st = readSafetensors(file);
  const tensors = new Map(st.tensors);
  const t = change(tensors.get(name)!);
  if (t === null) tensors.delete(name);
  else tensors.set(name, t);
  writeSafetensors(file, tensors, st.metadata);
}

/** Both inspect (headers, tokenizer and values) and loading refuse the folder, with one line matching `message`. */
function refusedAlike(dir: string, message: RegExp, what: string): void {
  assert.throws(() => inspectModelFolder(dir, { values: true }), (e: unknown) => e instanceof ModelFolderError && message.test(e.message) && !e.message.includes("\n"), `inspect: ${what}`);
  assert.throws(() => loadCheckpoint(dir), message, `load: ${what}`);
}

test("config.json sizes above the limits are refused in milliseconds, naming the file, the key and the limit; real families' sizes pass", () => {
  const llama = FAMILY_HF_CONFIGS["llama3"]!;
  const cases: Array<[string, number, RegExp]> = [
    ["num_hidden_layers", 1e9, /x\/config\.json: num_hidden_layers 1000000000 is above the limit of 256$/],
    ["max_position_embeddings", 1e15, /x\/config\.json: max_position_embeddings 1000000000000000 is above the limit of 1,048,576$/],
    ["max_position_embeddings", 1e8, /max_position_embeddings 100000000 is above the limit of 1,048,576/],
    ["vocab_size", 2 ** 31, /vocab_size 2147483648 is above the limit of 1,048,576/],
    ["hidden_size", 1e9, /hidden_size 1000000000 is above the limit of 32,768/],
    ["intermediate_size", 1e7, /intermediate_size 10000000 is above the limit of 131,072/],
    ["num_attention_heads", 4096, /num_attention_heads 4096 is above the limit of 256/],
  ];
  for (const [key, value, message] of cases) {
    const start = performance.now();
    assert.throws(() => validateConfig({ ...llama, [key]: value }, "x/config.json"), message, key);
    assert.ok(performance.now() - start < 1000, `${key} ${value} took ${performance.now() - start} ms`);
  }
  // The largest of the families we build, at their real sizes: Llama 3.1 405B, Qwen2.5-7B-Instruct-1M, a Gemma-size vocabulary.
  const big: Array<Record<string, unknown>> = [
    { ...llama, num_hidden_layers: 126, hidden_size: 16384, intermediate_size: 53248, num_attention_heads: 128, num_key_value_heads: 8, head_dim: 128, vocab_size: 128256, max_position_embeddings: 131072 },
    { ...FAMILY_HF_CONFIGS["qwen2"]!, hidden_size: 3584, intermediate_size: 18944, num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, vocab_size: 152064, max_position_embeddings: 1010000 },
    { ...llama, vocab_size: 262144 },
  ];
  for (const raw of big) assert.doesNotThrow(() => validateConfig(raw, "x/config.json"));
  assert.equal(MODEL_LIMITS.max_position_embeddings, 1_048_576);
});

test("a config.json without model_type is refused (not read as Llama), by inspect and by loading", (t) => {
  const { model_type: _, ...untyped } = FAMILY_HF_CONFIGS["qwen2"]!;
  assert.throws(() => validateConfig(untyped, "x/config.json"), /x\/config\.json: no "model_type", which names the model's family \(supported model_type: "llama"/);
  const dir = folder(join(tempDir(t), "m"), FAMILIES["qwen2"]!);
  editJson(join(dir, "config.json"), (o) => delete o["model_type"]);
  refusedAlike(dir, /config\.json: no "model_type"/, "no model_type");
});

test("sizes in config.json are checked against the weights present before anything is sized by them: the key is named", (t) => {
  for (const [family, c] of Object.entries(FAMILIES)) {
    const dir = folder(join(tempDir(t), family), c);
    const cfg = readFileSync(join(dir, "config.json"), "utf8");
    const cases: Array<[string, number, RegExp]> = [
      ["num_hidden_layers", c.num_hidden_layers + 1, new RegExp(`config\\.json: num_hidden_layers is ${c.num_hidden_layers + 1}, but the weights hold layers 0–${c.num_hidden_layers - 1}$`)],
      ["num_hidden_layers", 200, new RegExp(`num_hidden_layers is 200, but the weights hold layers 0–${c.num_hidden_layers - 1}`)],
      ["num_hidden_layers", 1e9, /num_hidden_layers 1000000000 is above the limit of 256/],
      ["vocab_size", c.vocab_size + 5, new RegExp(`config\\.json: vocab_size is ${c.vocab_size + 5}, but model\\.embed_tokens\\.weight holds ${c.vocab_size} rows`)],
      ["intermediate_size", c.intermediate_size * 2, new RegExp(`config\\.json: intermediate_size is ${c.intermediate_size * 2}, but model\\.layers\\.0\\.mlp\\.up_proj\\.weight holds ${c.intermediate_size} rows`)],
    ];
    for (const [key, value, message] of cases) {
      editJson(join(dir, "config.json"), (o) => (o[key] = value));
      const start = performance.now();
      refusedAlike(dir, message, `${family} ${key} ${value}`);
      assert.ok(performance.now() - start < 5000, `${family} ${key} ${value}: ${performance.now() - start} ms`);
      writeFileSync(join(dir, "config.json"), cfg);
    }
  }
});

test("inspect refuses what loading refuses: an integer weight, an extra tensor, an unusable tokenizer.json, a chat template that is not one", (t) => {
  const c = FAMILIES["llama3"]!;
  const base = folder(join(tempDir(t), "base"), c, { dtype: "F32" });
  assert.doesNotThrow(() => inspectModelFolder(base, { values: true }));
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ["I8 weight", (d) => editTensor(d, "model.layers.1.mlp.up_proj.weight", (w) => ({ dtype: "I8", shape: w.shape, bytes: new Uint8Array(w.bytes.length / 4) })), /model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.weight is I8, not a floating-point type/],
    ["extra tensor", (d) => editTensor(d, "model.layers.0.mlp.extra.weight", () => fromFloat32(new Float32Array(4), [4])), /model\.safetensors: unexpected parameter model\.layers\.0\.mlp\.extra\.weight/],
    ["missing tensor", (d) => editTensor(d, "model.layers.1.mlp.up_proj.weight", () => null), /missing parameter model\.layers\.1\.mlp\.up_proj\.weight/],
    ["tokenizer.json not a tokenizer", (d) => writeFileSync(join(d, "tokenizer.json"), '{"not": "a tokenizer"}'), /tokenizer\.json: not a Hugging Face tokenizer\.json/],
    ["empty tokenizer.json", (d) => writeFileSync(join(d, "tokenizer.json"), ""), /tokenizer\.json: not valid JSON/],
    ["tokenizer.json not JSON", (d) => writeFileSync(join(d, "tokenizer.json"), "garbage{\n"), /tokenizer\.json: not valid JSON/],
    ["chat_template 42", (d) => editJson(join(d, "tokenizer_config.json"), (o) => (o["chat_template"] = 42)), /chat_template is neither a template nor a list/],
    ["generation_config.json not JSON", (d) => writeFileSync(join(d, "generation_config.json"), "{"), /generation_config\.json/],
  ];
  for (const [what, spoil, message] of cases) {
    const dir = folder(join(tempDir(t), what.replace(/\W+/g, "-")), c, { dtype: "F32" });
    spoil(dir);
    refusedAlike(dir, message, what);
  }
});

test("a NaN or infinity in the weights is refused by loading (during the conversion to float32) and by inspect, naming the file, tensor and index", (t) => {
  const cases: Array<["F32" | "BF16" | "F16", number, string]> = [["BF16", NaN, "NaN"], ["F16", Infinity, "Infinity"], ["F32", -Infinity, "-Infinity"]];
  for (const [family, c] of Object.entries(FAMILIES)) {
    for (const [dtype, value, shown] of cases) {
      // Sharded, so that the message names the shard holding the tensor.
      const dir = folder(join(tempDir(t), `${family}-${dtype}`), c, { dtype, maxShardBytes: 4000 });
      const name = `model.layers.${c.num_hidden_layers - 1}.mlp.up_proj.weight`;
      const ckpt = loadCheckpoint(dir);
      const w = ckpt.weights.get(name)!;
      const at = w.data.length - 3;
      w.data[at] = value;
      saveCheckpoint(dir, ckpt, {}, { dtype, maxShardBytes: 4000 });
      const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as { weight_map: Record<string, string> };
      const shard = index.weight_map[name]!.replace(/\./g, "\\.");
      refusedAlike(dir, new RegExp(`${shard}: ${name.replace(/\./g, "\\.")} holds ${shown} at index ${at}$`), `${family} ${dtype} ${shown}`);
      // Headers only (what the editor asks for at once) does not read values; loading still refuses.
      assert.doesNotThrow(() => inspectModelFolder(dir));
    }
  }
});

test("the reader's finiteness checks agree with each other and the values, across scan pieces, in every float type", (t) => {
  const dir = tempDir(t);
  const n = 5_000_000; // 20 MB of F32: more than one 16 MB scan piece
  const data = new Float32Array(n).fill(0.5);
  const bad = 4_500_001;
  data[bad] = NaN;
  const tensors = new Map<string, StoredTensor>([
    ["f32", fromFloat32(data, [n], "F32")],
    ["bf16", fromFloat32(Float32Array.from([1, 2, Infinity, 4]), [4], "BF16")],
    ["f16", fromFloat32(Float32Array.from([1, -Infinity]), [2], "F16")],
    ["f64", { dtype: "F64", shape: [3], bytes: new Uint8Array(Float64Array.from([1, 1e300, 2]).buffer) }],
    ["fine", fromFloat32(Float32Array.from([0, -0, 3.4e38, -1e-40]), [4], "F32")],
  ]);
  const file = join(dir, "model.safetensors");
  writeSafetensors(file, tensors);
  const r = openSafetensors(file);
  try {
    const expected: Record<string, [number, number] | null> = { f32: [bad, NaN], bf16: [2, Infinity], f16: [1, -Infinity], f64: [1, Infinity], fine: null };
    for (const [name, want] of Object.entries(expected)) {
      const scanned = r.firstNonFinite(name);
      assert.deepEqual(scanned && [scanned.index, scanned.value], want, `scan ${name}`);
      if (want === null) {
        assert.doesNotThrow(() => r.readFloat32(name, { finite: true }), name);
      } else {
        assert.throws(() => r.readFloat32(name, { finite: true }), new RegExp(`model\\.safetensors: ${name} holds ${String(want[1])} at index ${want[0]}$`), name);
        // Unchecked reads keep the values, bit for bit, as before.
        assert.ok(!Number.isFinite(r.readFloat32(name)[want[0]]!), name);
      }
    }
  } finally {
    r.close();
  }
});
