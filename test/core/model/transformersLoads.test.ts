import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuTf } from "../../helpers/tf";
import { repoRoot } from "../../helpers/paths";
import { runVenvJson, skipWithoutVenv } from "../../helpers/venv";
import { tinyTokenizer } from "../../helpers/modelFolders";
import { FAMILY_HF_CONFIGS, randomWeights } from "../engine/engineFixtures";
import { validateConfig, type ModelConfig } from "../../../src/core/model/config";
import { loadCheckpoint, saveCheckpoint, sourceDtype, type Checkpoint } from "../../../src/core/model/checkpoint";
import { weightFilesOf, type WeightDtype } from "../../../src/core/model/modelFolder";
import type { HostWeights } from "../../../src/core/model/weights";
import { defaultConfig } from "../../../src/core/selftrain/config";
import { ensureBaseModel } from "../../../src/core/selftrain/modelFiles";
import { TfLlama } from "../../../src/core/engine/tf/tfLlama";
import { OrtEngine } from "../../../src/core/engine/ort/runtime/ortEngine";
import { makeBatch } from "../../../src/core/train/batching";
import { Rng } from "../../../src/core/util/rng";

// README's promise, tested: every model folder we save loads in transformers as the original does. For each family
// (Llama 3 with llama3 RoPE, Qwen2 with q/k/v biases, Qwen3 with q/k norms; engineFixtures' configs at tiny sizes,
// random weights) the folders a run writes, through the product's own calls:
//   - a model we create (our config.json, float32, one file);
//   - from a model folder in float32 or bf16, one file or sharded (model.safetensors.index.json), as a hub folder is:
//     the run's base (ensureBaseModel: the source's dtype and layout), a stage checkpoint after "training" (float32
//     working weights, one file, `selftrain_source_dtype`, as the runner saves it) and the export (exportModel's
//     call: the source's dtype, in the base's weight files).
// AutoModelForCausalLM.from_pretrained(folder, dtype="auto") loads each with nothing missing, unexpected or
// mismatched, as the architecture config.json names, in the dtype the folder says, with every parameter bit for bit
// what our loader reads; AutoTokenizer gives our ids; and its logits (float64 after loading) equal both engines'
// (ONNX Runtime's log-probabilities, TensorFlow.js's logits) within families.test.ts's tolerance.

const TOL = 1e-4;
const skip = skipWithoutVenv(["torch", "transformers", "safetensors"]);
const TEXTS = ["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7", "Tom buys 12 pens for 2 dollars each."];
const ROWS = TEXTS.map((t) => [tinyTokenizer.bosId!, ...tinyTokenizer.encode(t)]);
type Layout = "one file" | "sharded";
const SOURCES: ReadonlyArray<[WeightDtype, Layout]> = [["F32", "one file"], ["F32", "sharded"], ["BF16", "one file"], ["BF16", "sharded"]];
const TORCH: Record<WeightDtype, string> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

interface Folder {
  family: string;
  label: string;
  dir: string;
  /** what from_pretrained(dtype="auto") must give */
  dtype: string;
  layout: Layout;
}
interface Loaded {
  class: string;
  dtype: string;
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  tied: boolean;
  params: Record<string, string>;
  tokens: number[][];
  f32: number[][][];
  f64: number[][][];
}

/** A family's config.json as a hub folder has it: the tokenizer's vocabulary size, the weights' dtype. */
function hubConfig(family: string, dtype: WeightDtype): Record<string, unknown> {
  const raw: Record<string, unknown> = { ...FAMILY_HF_CONFIGS[family], vocab_size: tinyTokenizer.vocabSize };
  raw["dtype" in raw ? "dtype" : "torch_dtype"] = TORCH[dtype];
  return raw;
}

/** Small float32 changes, as training leaves: off the bf16 grid, so the export rounds. */
function trained(w: HostWeights, seed: number): HostWeights {
  const rng = new Rng(seed);
  return new Map([...w].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x) => x + 1e-3 * rng.normal()) }]));
}

/** Every folder of one family, written as the product writes them. */
function writeFolders(root: string, family: string, seed: number): Folder[] {
  const config = validateConfig(hubConfig(family, "F32"), family);
  const weights = randomWeights(config, seed);
  const out: Folder[] = [];
  const created = join(root, family, "created");
  saveCheckpoint(created, { config, weights, tokenizer: tinyTokenizer });
  out.push({ family, label: "created (ours, float32)", dir: created, dtype: "float32", layout: "one file" });
  for (const [dtype, layout] of SOURCES) {
    const tag = `${dtype.toLowerCase()}-${layout === "sharded" ? "sharded" : "one"}`;
    const hub = join(root, family, `hub-${tag}`);
    const source = { config: hubConfig(family, dtype), dtype };
    saveCheckpoint(hub, { config, weights, tokenizer: tinyTokenizer, source }, {}, layout === "sharded" ? { maxShardBytes: 4096 } : {});
    if (layout === "sharded") assert.ok(readdirSync(hub).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 3, `${hub}: shards`);
    const runDir = join(root, family, `run-${tag}`);
    const base: Checkpoint = ensureBaseModel(runDir, defaultConfig(hub), [], root);
    out.push({ family, label: `base of a ${dtype} ${layout} folder`, dir: join(runDir, "base"), dtype: TORCH[dtype], layout });
    // The runner's stage checkpoint (runner.ts save: float32 whatever the source) ...
    const stage = join(runDir, "round-0", "sft");
    saveCheckpoint(stage, { ...base, weights: trained(base.weights, seed + 1) }, { stage: "sft" }, { dtype: "F32" });
    if (dtype === "BF16" && layout === "one file") out.push({ family, label: `stage checkpoint of a ${dtype} folder`, dir: stage, dtype: "float32", layout: "one file" });
    // ... and exportModel's call: the source's dtype, the base's weight files.
    const ckpt = loadCheckpoint(stage);
    const exported = join(runDir, "export");
    saveCheckpoint(exported, ckpt, { round: "0" }, { dtype: sourceDtype(ckpt.source), layout: weightFilesOf(join(runDir, "base")) });
    out.push({ family, label: `export of a ${dtype} ${layout} folder`, dir: exported, dtype: TORCH[dtype], layout });
  }
  return out;
}

const FAMILY_NAMES = Object.keys(FAMILY_HF_CONFIGS);
let job: Promise<{ folders: Folder[]; loaded: Loaded[]; versions: string }> | null = null;
/** Every family's folders and one run of the Python side over them all (it starts in seconds). */
function transformersJob(): Promise<{ folders: Folder[]; loaded: Loaded[]; versions: string }> {
  job ??= Promise.resolve().then(() => {
    const root = mkdtempSync(join(tmpdir(), "sts-hfload-"));
    process.on("exit", () => rmSync(root, { recursive: true, force: true }));
    const folders = FAMILY_NAMES.flatMap((f, i) => writeFolders(root, f, 40 + 10 * i));
    mkdirSync(join(root, "job"));
    const out = runVenvJson<{ transformers: string; torch: string; folders: Loaded[] }>(
      join(repoRoot, "test/core/model/transformers_loads.py"),
      { folders: folders.map((f) => ({ dir: f.dir, rows: ROWS, texts: TEXTS })) },
      join(root, "job"),
    );
    return { folders, loaded: out.folders, versions: `transformers ${out.transformers}, torch ${out.torch}` };
  });
  return job;
}

const sha256 = (a: Float32Array): string => createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");

function logSoftmaxAt(row: number[], id: number): number {
  const m = Math.max(...row);
  return row[id]! - m - Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
}

/** Max |ours − transformers float64| of TF.js's logits and ONNX Runtime's log-probs; float32's own distance beside. */
async function compareLogits(config: ModelConfig, weights: HostWeights, want: Loaded): Promise<{ tf: number; ort: number; f32: number }> {
  const tf = await cpuTf();
  let tfWorst = 0, ortWorst = 0, f32 = 0;
  const model = new TfLlama(tf, config, weights);
  try {
    ROWS.forEach((ids, b) => {
      const got = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], "int32")).logits.arraySync() as number[][][])[0]!;
      want.f64[b]!.forEach((pos, t) => pos.forEach((x, v) => {
        tfWorst = Math.max(tfWorst, Math.abs(x - got[t]![v]!));
        f32 = Math.max(f32, Math.abs(x - want.f32[b]![t]![v]!));
      }));
    });
  } finally {
    model.dispose();
  }
  const batch = makeBatch(ROWS.map((ids) => ({ ids, promptLength: 1 })), config.pad_token_id, 64);
  assert.equal(batch.truncated, 0);
  const engine = new OrtEngine(config, weights, { threads: 1 });
  try {
    const lp = await engine.tokenLogProbs(batch);
    ROWS.forEach((ids, b) => {
      for (let t = 0; t + 1 < ids.length; t++) ortWorst = Math.max(ortWorst, Math.abs(logSoftmaxAt(want.f64[b]![t]!, ids[t + 1]!) - lp[b * batch.length + t]!));
    });
  } finally {
    engine.dispose();
  }
  return { tf: tfWorst, ort: ortWorst, f32 };
}

for (const family of FAMILY_NAMES) {
  test(`${family}: transformers loads every folder we save (created; base, stage checkpoint and export of f32/bf16, one file/sharded) and its logits equal ours`, { skip, timeout: 120_000 }, async (t) => {
    const { folders, loaded, versions } = await transformersJob();
    const arch = (FAMILY_HF_CONFIGS[family]!["architectures"] as string[])[0]!;
    let worst = { tf: 0, ort: 0, f32: 0 };
    for (const [i, f] of folders.entries()) {
      if (f.family !== family) continue;
      const got = loaded[i]!;
      const what = `${family}, ${f.label}`;
      const files = readdirSync(f.dir);
      assert.equal(files.includes("model.safetensors.index.json"), f.layout === "sharded", `${what}: ${files.join(", ")}`);
      assert.deepEqual([got.missing, got.unexpected, got.mismatched], [[], [], []], `${what}: transformers' loading report (missing, unexpected, mismatched keys)`);
      assert.equal(got.class, arch, what);
      assert.equal(got.dtype, f.dtype, `${what}: the dtype from_pretrained(dtype="auto") chose`);
      const ours = loadCheckpoint(f.dir);
      assert.equal(got.tied, ours.config.tie_word_embeddings, `${what}: lm_head tied to embed_tokens`);
      assert.deepEqual(Object.keys(got.params).sort(), [...ours.weights.keys()].sort(), `${what}: parameter names`);
      for (const [name, w] of ours.weights) assert.equal(got.params[name], sha256(w.data), `${what}: ${name} differs between transformers and our loader`);
      assert.deepEqual(got.tokens, ROWS.map((r) => r.slice(1)), `${what}: AutoTokenizer's ids`);
      const d = await compareLogits(ours.config, ours.weights, got);
      t.diagnostic(`${f.label} (${got.dtype}, ${f.layout}): max |Δ| vs transformers float64: TF.js logits ${d.tf.toExponential(2)}, ONNX Runtime log-probs ${d.ort.toExponential(2)}; transformers float32 ${d.f32.toExponential(2)}`);
      assert.ok(d.tf < TOL, `${what}: max |tfjs − transformers| logit = ${d.tf}`);
      assert.ok(d.ort < TOL, `${what}: max |ort − transformers| log-prob = ${d.ort}`);
      worst = { tf: Math.max(worst.tf, d.tf), ort: Math.max(worst.ort, d.ort), f32: Math.max(worst.f32, d.f32) };
    }
    assert.equal(folders.filter((f) => f.family === family).length, 10);
    t.diagnostic(`${family} (${versions}): worst TF.js ${worst.tf.toExponential(2)}, ONNX Runtime ${worst.ort.toExponential(2)}, transformers float32 ${worst.f32.toExponential(2)}`);
  });
}
