// A bf16 model through a real round at a pretrained model's DPO learning rate (3e-7): the stage checkpoints keep
// float32 working weights, so DPO's updates (far below half a bf16 step) reach the next stage bit for bit; the
// export gives the model back in the source's dtype, layout and config.json.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSyntheticTask, toJsonlRecord } from "../../src/core/data/synthetic";
import { runRound } from "../../src/core/selftrain/session";
import { initWorkspace, selftrainDir, exportRound } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { loadCheckpoint, saveCheckpoint, sourceDtype } from "../../src/core/model/checkpoint";
import { validateConfig } from "../../src/core/model/config";
import { initWeights, type HostWeights } from "../../src/core/model/weights";
import { readWeightLayout } from "../../src/core/model/modelFolder";
import { readSafetensors, writeSafetensors } from "../../src/core/model/safetensors";
import { decodeModel } from "../../src/core/engine/ort/onnx/onnxProto";
import { trainBpe } from "../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../src/core/tokenizer/tokenizer";
import { sourceConfig } from "../core/model/hfFolder";
import { recorder } from "../helpers/workspace";

const SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

/** bf16 by hand: round to nearest even on the top 16 bits of each float32 (finite values), as bits. */
function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/**
 * A Llama folder as a hub model comes: bf16, the source's config.json, two shards split by tensor count (not
 * by size, so that only a copy of the layout, not a re-sharding, gives the same files).
 */
function writeBf16Source(dir: string, train: string[]): { raw: Record<string, unknown>; weightMap: Record<string, string> } {
  const tokenizer = tokenizerFromFiles(trainBpe(train, { vocabSize: 300 }));
  const raw = { ...sourceConfig(tokenizer.vocabSize, "BF16", false), max_position_embeddings: 256, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId };
  const config = validateConfig(raw, "source config.json");
  saveCheckpoint(dir, { config, weights: initWeights(config, 11), tokenizer, source: { config: raw, dtype: "BF16" } });
  rmSync(join(dir, "generation_config.json"), { force: true });
  const stored = readSafetensors(join(dir, "model.safetensors")).tensors;
  rmSync(join(dir, "model.safetensors"));
  const names = [...stored.keys()];
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => (weightMap[n] = SHARDS[Math.floor((i * 2) / names.length)]!));
  for (const shard of SHARDS) writeSafetensors(join(dir, shard), new Map([...stored].filter(([n]) => weightMap[n] === shard)), { format: "pt" });
  const total = [...stored.values()].reduce((s, t) => s + t.bytes.length, 0);
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return { raw, weightMap };
}

/** The dtype of every tensor a folder stores. */
function storedDtypes(dir: string): Set<string> {
  return new Set(readWeightLayout(dir).files.flatMap((f) => [...f.tensors.values()].map((t) => t.dtype)));
}

/** The float32 initializers of the inference model beside a checkpoint: written from the stage's own weights, before any file. */
function onnxWeights(dir: string): Map<string, Float32Array> {
  const model = decodeModel(readFileSync(join(dir, "model.onnx")));
  const out = new Map<string, Float32Array>();
  for (const t of model.graph.initializer) {
    if (t.name === undefined || t.data_type !== 1 || !t.raw_data) continue;
    const bytes = Uint8Array.from(t.raw_data);
    out.set(t.name, new Float32Array(bytes.buffer, 0, bytes.length / 4));
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

interface Ran {
  runId: string;
  store: RunStore;
  raw: Record<string, unknown>;
  weightMap: Record<string, string>;
}

let ran: Promise<Ran> | null = null;
const ws = mkdtempSync(join(tmpdir(), "sts-precision-"));
after(() => rmSync(ws, { recursive: true, force: true }));

/** Warm-up and round 1 on a bf16 source, once for both tests. */
function runOnce(): Promise<Ran> {
  ran ??= (async (): Promise<Ran> => {
    mkdirSync(join(ws, "data"));
    const ex = generateSyntheticTask({ seed: 4, count: 30, maxSteps: 1 });
    writeFileSync(join(ws, "data", "train.jsonl"), ex.slice(0, 26).map(toJsonlRecord).join("\n") + "\n");
    writeFileSync(join(ws, "data", "test.jsonl"), ex.slice(26).map(toJsonlRecord).join("\n") + "\n");
    const source = join(ws, "models", "bf16");
    const { raw, weightMap } = writeBf16Source(source, ex.flatMap((e) => [e.question, e.rationale]));
    await initWorkspace(ws, {
      train: "data/train.jsonl", test: "data/test.jsonl",
      overrides: {
        seed: 2,
        data: { devSize: 4 },
        model: { init: "models/bf16", promptFormat: "plain" },
        warmup: { epochs: 0, steps: 6, batchSize: 8, microBatchSize: 8, learningRate: 1e-3, maxLength: 160 },
        sampling: { dpoSamples: 2, sftSamples: 1, maxNewTokens: 24, batchSize: 32 },
        dpo: { steps: 4, batchSize: 8, microBatchSize: 8, learningRate: 3e-7, warmupRatio: 0, maxLength: 160 },
        sft: { epochs: 0, steps: 2, batchSize: 8, microBatchSize: 8, learningRate: 1e-3, maxLength: 160 },
        eval: { passSamples: 1, passK: 1, maxQuestions: 2 },
      },
    });
    const { runId } = await runRound({ workspace: ws, round: 1, events: recorder(), shouldStop: () => false });
    const store = await RunStore.open(selftrainDir(ws), runId);
    assert.ok((store.stage(1, "dpo").counts?.["steps"] ?? 0) > 0, "DPO trained (there were pairs)");
    return { runId, store, raw, weightMap };
  })();
  return ran;
}

test("a bf16 model, DPO at lr 3e-7: every stage checkpoint is float32 and the next stage loads exactly the weights DPO ended with", { timeout: 600_000 }, async (t) => {
  const { store } = await runOnce();
  // What the next stage (sampling for SFT) loads is, bit for bit, what DPO held at its end: the inference model
  // beside the checkpoint was written from those weights in memory, never through a file.
  const dpoDir = store.checkpointDir(1, "dpo");
  const next: HostWeights = loadCheckpoint(dpoDir).weights;
  const held = onnxWeights(dpoDir);
  for (const [name, w] of next) {
    const h = held.get(name);
    assert.ok(h, `${name} is in model.onnx`);
    assert.ok(sameBits(w.data, h), `${name}: the DPO checkpoint holds what the DPO stage ended with`);
  }
  // The updates were far below half a bf16 step: nearly all of them would have vanished in a bf16 checkpoint.
  const start = loadCheckpoint(store.checkpointDir(0, "warmup")).weights;
  let moved = 0, lostInBf16 = 0;
  for (const [name, w] of next) {
    const s = start.get(name)!.data;
    for (let i = 0; i < w.data.length; i++) {
      if (w.data[i] === s[i]) continue;
      moved++;
      if (bf16Bits(w.data[i]!) === bf16Bits(s[i]!)) lostInBf16++;
    }
  }
  t.diagnostic(`DPO at 3e-7 moved ${moved} weights; ${lostInBf16} of those moves are below bf16's resolution`);
  assert.ok(moved > 0, "DPO changed the weights");
  assert.ok(lostInBf16 > moved / 2, `${lostInBf16} of ${moved} updates survive only in float32`);

  // Every stage checkpoint keeps float32 weights, says so, and remembers the source's type; so does the manifest.
  const base = join(store.dir, "base");
  assert.deepEqual([...storedDtypes(base)], ["BF16"], "the run's base is the source as it came");
  for (const [round, stage] of [[0, "warmup"], [1, "dpo"], [1, "sft"]] as const) {
    const dir = store.checkpointDir(round, stage);
    assert.deepEqual([...storedDtypes(dir)], ["F32"], `${stage}: stored as float32`);
    const config = readJson(join(dir, "config.json"));
    assert.equal(config["torch_dtype"], "float32", `${stage}: config.json says float32`);
    assert.equal(config["selftrain_source_dtype"], "bfloat16", `${stage}: and keeps the source's type`);
    assert.equal(sourceDtype(loadCheckpoint(dir).source), "BF16", stage);
    assert.deepEqual(store.stage(round, stage).checkpoint, { dtype: "float32", sourceDtype: "bfloat16" }, `${stage}: manifest`);
  }
  assert.equal(store.stage(1, "pairs").checkpoint, undefined, "a stage that writes no checkpoint records none");
});

test("export writes the round's model in the source's dtype (bf16, rounded to nearest even from the float32 working weights), layout and config.json", { timeout: 600_000 }, async () => {
  const { runId, store, raw, weightMap } = await runOnce();
  // The round's SFT model, in the source's two shards with the same weight map.
  const out = join(ws, "export");
  const exported = await exportRound(ws, runId, 1, out, { model: true });
  const modelDir = join(out, `${runId}-round-1-model`);
  assert.equal(exported.model, modelDir);
  const config = readJson(join(modelDir, "config.json"));
  assert.equal(config["torch_dtype"], "bfloat16");
  assert.deepEqual(Object.fromEntries(Object.entries(config).filter(([k]) => !k.startsWith("selftrain_"))), raw, "config.json is the source's apart from our format version");
  assert.equal(config["selftrain_source_dtype"], undefined);
  assert.deepEqual(readdirSync(modelDir).filter((f) => f.includes("safetensors")).sort(), [...SHARDS, "model.safetensors.index.json"]);
  assert.deepEqual((readJson(join(modelDir, "model.safetensors.index.json")) as { weight_map: Record<string, string> }).weight_map, Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]])));
  const working = loadCheckpoint(store.checkpointDir(1, "sft")).weights;
  let compared = 0;
  for (const shard of SHARDS) {
    for (const [name, tensor] of readSafetensors(join(modelDir, shard)).tensors) {
      assert.equal(tensor.dtype, "BF16", name);
      assert.equal(weightMap[name], shard, name);
      const got = new Uint16Array(Uint8Array.from(tensor.bytes).buffer);
      const w = working.get(name)!.data;
      for (let i = 0; i < w.length; i++) if (got[i] !== bf16Bits(w[i]!)) assert.fail(`${name}[${i}]: exported bits ${got[i]}, bf16 of the working ${w[i]} is ${bf16Bits(w[i]!)}`);
      compared++;
    }
  }
  assert.equal(compared, working.size, "every tensor exported");
  const back = loadCheckpoint(modelDir);
  assert.equal(back.source?.dtype, "BF16");
  assert.equal(sourceDtype(back.source), "BF16");
});
