import { test } from "node:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { FAMILIES, MICRO_FAMILIES, randomWeights } from "../engineFixtures";
import { parameterShapes } from "../../../../src/core/model/architecture";
import { initWeights, type HostWeights } from "../../../../src/core/model/weights";
import { makeBatch } from "../../../../src/core/train/batching";
import { GraphNames, bufferedDecodeGraph, decodeGraph, dpoGraph, logProbGraph, sftGraph } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { exportInferenceModel, writeInferenceModel } from "../../../../src/core/engine/ort/llama/inferenceModel";
import { writeModelFiles } from "../../../../src/core/engine/ort/onnx/onnxFiles";
import { moveGraph, optimizerGraph, zerosGraph } from "../../../../src/core/engine/ort/runtime/stateGraphs";
import { slotsOf } from "../../../../src/core/engine/ort/runtime/modelState";
import { decodeModel } from "../../../../src/core/engine/ort/onnx/onnxProto";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { OrtEngine } from "../../../../src/core/engine/ort/runtime/ortEngine";
import { Rng } from "../../../../src/core/util/rng";

const micro = tinyConfig(11, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16, tie_word_embeddings: false });

// The families' weights are randomWeights: norm weights (q_norm and k_norm too) away from 1, biases of std 1.
const gradCases: Array<[string, ModelConfig, (c: ModelConfig) => HostWeights]> = [
  ["llama, untied", micro, (c) => initWeights(c, 4, 0.4)],
  ["llama, tied", { ...micro, tie_word_embeddings: true }, (c) => initWeights(c, 4, 0.4)],
  ...Object.entries(MICRO_FAMILIES).map(([name, c]): [string, ModelConfig, (c: ModelConfig) => HostWeights] => [name, c, (c) => randomWeights(c, 4)]),
];
for (const [label, c, init] of gradCases) {
  test(`the whole SFT graph's gradients match float64 finite differences (independently of TF.js): ${label}`, async () => {
    const ort = loadOrt();
    const session = await createSession(sftGraph(c, { float: "float64" }).toBytes(), { threads: 1 });
    const w = init(c);
    const weights = new Map([...w].map(([name, t]) => [name, Float64Array.from(t.data)]));
    const batch = makeBatch([{ ids: [1, 4, 5, 6, 7, 2], promptLength: 2 }, { ids: [1, 8, 9, 2], promptLength: 1 }, { ids: [1, 3, 10, 9, 8, 7, 2], promptLength: 3 }], 0, 16);
    const dims = [batch.batch, batch.length];
    const run = async (): Promise<Record<string, { data: unknown }>> => {
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
        input_ids: new ort.Tensor("int32", batch.inputs, dims),
        targets: new ort.Tensor("int32", batch.targets, dims),
        mask: new ort.Tensor("float64", Float64Array.from(batch.mask), dims),
        scale: new ort.Tensor("float64", Float64Array.of(1), []),
      };
      for (const [name, shape] of parameterShapes(c)) feeds[name] = new ort.Tensor("float64", weights.get(name)!, shape);
      return session.run(feeds);
    };
    const base = await run();
    const h = 1e-6;
    let worst = 0;
    for (const name of parameterShapes(c).keys()) {
      const g = base[`grad.${name}`]!.data as Float64Array;
      const x = weights.get(name)!;
      // Five entries per tensor, the largest gradients among them: enough to catch a wrong rule anywhere.
      const idx = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 5);
      for (const i of idx) {
        const x0 = x[i]!;
        x[i] = x0 + h;
        const up = ((await run()).loss!.data as Float64Array)[0]!;
        x[i] = x0 - h;
        const down = ((await run()).loss!.data as Float64Array)[0]!;
        x[i] = x0;
        const fd = (up - down) / (2 * h);
        // Relative to the entry, or to 1e-4 for the smallest: a key bias shifts a query's scores almost alike, which
        // softmax ignores, so its gradients are ~1e-6, where the differences' rounding (~1e-10) is a larger share.
        const rel = Math.abs(fd - g[i]!) / Math.max(Math.abs(fd), 1e-4);
        worst = Math.max(worst, rel);
        assert.ok(rel < 1e-5, `${label} ${name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`);
      }
    }
    await session.release();
  });
}

test("every graph uses standard opset-17 ops only (no contrib or training ops)", () => {
  const c = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32 });
  for (const b of [c, ...Object.values(FAMILIES)].flatMap((c) => [sftGraph(c), dpoGraph(c), sftGraph(c, { accumulateGradients: true }), optimizerGraph(slotsOf(c)), moveGraph(slotsOf(c)), zerosGraph(slotsOf(c)), logProbGraph(c), decodeGraph(c), bufferedDecodeGraph(c)])) {
    const model = decodeModel(b.toBytes());
    assert.deepEqual(model.opset_import, [{ domain: "", version: 17 }]);
    assert.ok(model.graph.node.every((n) => !n.domain), model.graph.name);
    // Ops whose names betray training kernels the stock build lacks.
    assert.ok(!model.graph.node.some((n) => /Grad$|Optimizer|^InPlace/.test(n.op_type)), model.graph.name);
  }
});

const llama40 = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });

for (const [label, c] of [["llama", llama40] as const, ...Object.entries(FAMILIES)]) {
  test(`the exported inference model is self-contained and decodes as the engine does: ${label}`, async () => {
    const ort = loadOrt();
    const w = label === "llama" ? initWeights(c, 8, 0.3) : randomWeights(c, 8);
    const bytes = exportInferenceModel(c, w);
    const model = decodeModel(bytes);
    assert.deepEqual(
      model.graph.input.map((i) => i.name),
      ["input_ids", "positions", "attn_bias", "past_key.0", "past_value.0", "past_key.1", "past_value.1"],
    );
    const session = await createSession(bytes, { threads: 1 });
    // Two prompts, the shorter left-padded by one (its first key hidden, its positions counting real tokens).
    const prompts = [[1, 5, 6, 7], [1, 9, 3]];
    const ids = Int32Array.from([1, 5, 6, 7, c.pad_token_id, 1, 9, 3]);
    const positions = Int32Array.from([0, 1, 2, 3, 0, 0, 1, 2]);
    const bias = new Float32Array(2 * 4 * 4);
    for (let b = 0; b < 2; b++) for (let t = 0; t < 4; t++) for (let j = 0; j < 4; j++) if (j > t || (b === 1 && j === 0)) bias[(b * 4 + t) * 4 + j] = -1e9;
    const KV = c.num_key_value_heads;
    const hd = c.head_dim;
    const empty = (): InstanceType<typeof ort.Tensor> => new ort.Tensor("float32", new Float32Array(0), [2, KV, 0, hd]);
    const out = await session.run({
      input_ids: new ort.Tensor("int32", ids, [2, 4]),
      positions: new ort.Tensor("int32", positions, [2, 4]),
      attn_bias: new ort.Tensor("float32", bias, [2, 1, 4, 4]),
      "past_key.0": empty(),
      "past_value.0": empty(),
      "past_key.1": empty(),
      "past_value.1": empty(),
    });
    assert.deepEqual(out["present_key.1"]!.dims, [2, KV, 4, hd]);
    const engine = new OrtEngine(c, w, { threads: 1 });
    const { logits, session: s } = await engine.startDecoding(prompts);
    const got = out["logits"]!.data as Float32Array;
    assert.equal(got.length, logits.length);
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - logits[i]!) < 1e-5, `logit ${i}: ${got[i]} vs ${logits[i]}`);
    s.dispose();
    engine.dispose();
    await session.release();
  });
}

test("one session serves every batch size and length (symbolic dimensions)", async () => {
  const c = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
  const engine = new OrtEngine(c, initWeights(c, 1, 0.2), { threads: 1 });
  const rng = new Rng(3);
  for (const [n, len] of [[1, 3], [7, 30], [2, 63]] as const) {
    const seqs = Array.from({ length: n }, () => ({ ids: Array.from({ length: len + 1 }, () => rng.int(3, 39)), promptLength: 1 }));
    const batch = makeBatch(seqs, 0, 64);
    const lp = await engine.sequenceLogProbs(batch);
    assert.equal(lp.length, n);
    assert.ok(lp.every((x) => Number.isFinite(x) && x < 0));
    const { loss } = await engine.sftBackward(batch, 1);
    assert.ok(loss > 0 && Number.isFinite(loss));
  }
  // Longer than max_position_embeddings is refused, in training and in decoding, as TfLlama refuses it.
  const long = makeBatch([{ ids: Array.from({ length: 66 }, () => 5), promptLength: 1 }], 0, 80);
  await assert.rejects(engine.sftBackward(long, 1), /sequence of 65 tokens is longer than max_position_embeddings 64/);
  const { session } = await engine.startDecoding([Array.from({ length: 64 }, () => 5)]);
  await assert.rejects(session.step([5]), /longer than max_position_embeddings 64/);
  engine.dispose();
});

test("decode graphs write their KV outputs directly (no Identity copies)", () => {
  const c = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32 });
  for (const b of [decodeGraph(c), bufferedDecodeGraph(c)]) assert.equal(b.opCounts().get("Identity") ?? 0, 0, b.graphName);
  const outputs = decodeModel(bufferedDecodeGraph(c).toBytes()).graph.output.map((o) => o.name);
  assert.deepEqual(outputs, ["logits", "new_key.0", "new_value.0", "new_key.1", "new_value.1"]);
});

for (const [label, c] of [["llama", llama40] as const, ...Object.entries(FAMILIES)]) {
  test(`the fixed-capacity decode graph gives the Concat graph's logits and keys/values, whatever lies in its empty slots: ${label}`, async () => {
    const ort = loadOrt();
    const w = label === "llama" ? initWeights(c, 9, 0.3) : randomWeights(c, 9);
    const L = c.num_hidden_layers;
    const KV = c.num_key_value_heads;
    const hd = c.head_dim;
    const steps = label === "llama" ? 40 : 16;
    const concat = await createSession(decodeGraph(c, { weights: w }).toBytes(), { threads: 1 });
    const buffered = await createSession(bufferedDecodeGraph(c, { weights: w }).toBytes(), { threads: 1 });
    const f32 = (d: Float32Array, dims: number[]): InstanceType<typeof ort.Tensor> => new ort.Tensor("float32", d, dims);
    const rng = new Rng(10);
    // Two rows, the second left-padded by 3; the first prompt pass of 5 tokens, then 1-token steps.
    const B = 2;
    const pad = [0, 3];
    const T0 = 5;
    const valid = (b: number, j: number): boolean => j >= pad[b]!;
    // The Concat graph's cache, and the fixed-capacity cache kept here: a new capacity (2–9 spare slots) every
    // step, every slot beyond the filled ones holding random values the bias must hide.
    let past: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (let l = 0; l < L; l++) for (const name of [GraphNames.pastKey(l), GraphNames.pastValue(l)]) past[name] = f32(new Float32Array(0), [B, KV, 0, hd]);
    const filled: Float32Array[] = Array.from({ length: 2 * L }, () => new Float32Array(0)); // [B, KV, P, hd] each
    let P = 0;
    let worst = 0;
    for (let s = 0; s < steps; s++) {
      const n = s === 0 ? T0 : 1;
      const ids = Int32Array.from({ length: B * n }, () => rng.int(3, c.vocab_size - 1));
      const positions = Int32Array.from({ length: B * n }, (_, i) => Math.max(0, P + (i % n) - pad[Math.floor(i / n)]!));
      const C = P + rng.int(2, 9);
      const common = { input_ids: new ort.Tensor("int32", ids, [B, n]), positions: new ort.Tensor("int32", positions, [B, n]) };
      const biasA = new Float32Array(B * n * (P + n));
      const biasB = new Float32Array(B * n * (C + n)).fill(-1e9);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < n; t++) {
          for (let j = 0; j < P + n; j++) {
            const open = j <= P + t && valid(b, j);
            if (!open) biasA[(b * n + t) * (P + n) + j] = -1e9;
            if (open) biasB[(b * n + t) * (C + n) + (j < P ? j : C + j - P)] = 0;
          }
        }
      }
      const cacheFeeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (let l = 0; l < L; l++) {
        for (const [i, name] of [GraphNames.keyCache(l), GraphNames.valueCache(l)].entries()) {
          const buf = Float32Array.from({ length: B * KV * C * hd }, () => 50 * rng.normal());
          const src = filled[2 * l + i]!;
          for (let r = 0; r < B * KV; r++) buf.set(src.subarray(r * P * hd, (r + 1) * P * hd), r * C * hd);
          cacheFeeds[name] = f32(buf, [B, KV, C, hd]);
        }
      }
      const a = await concat.run({ ...common, ...past, attn_bias: f32(biasA, [B, 1, n, P + n]) });
      const b = await buffered.run({ ...common, ...cacheFeeds, attn_bias: f32(biasB, [B, 1, n, C + n]) });
      const la = a["logits"]!.data as Float32Array;
      const lb = b["logits"]!.data as Float32Array;
      for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(la[i]! - lb[i]!));
      // The new keys/values are the last n positions of present_* (padding positions aside: they attend to
      // nothing, so their hidden states, and keys and values past the first layer, are arbitrary and hidden).
      // Each graph's own outputs extend its cache.
      past = {};
      for (let l = 0; l < L; l++) {
        for (const [i, [pres, fresh, pastName]] of ([[GraphNames.presentKey(l), GraphNames.newKey(l), GraphNames.pastKey(l)], [GraphNames.presentValue(l), GraphNames.newValue(l), GraphNames.pastValue(l)]] as const).entries()) {
          const full = a[pres]!.data as Float32Array; // [B, KV, P+n, hd]
          const tail = b[fresh]!.data as Float32Array; // [B, KV, n, hd]
          assert.deepEqual(b[fresh]!.dims, [B, KV, n, hd]);
          const next = new Float32Array(B * KV * (P + n) * hd);
          for (let r = 0; r < B * KV; r++) {
            next.set(filled[2 * l + i]!.subarray(r * P * hd, (r + 1) * P * hd), r * (P + n) * hd);
            next.set(tail.subarray(r * n * hd, (r + 1) * n * hd), (r * (P + n) + P) * hd);
            for (let t = 0; t < n; t++) {
              if (!valid(Math.floor(r / KV), P + t)) continue;
              for (let k = 0; k < hd; k++) {
                const x = full[(r * (P + n) + P + t) * hd + k]!;
                const y = tail[(r * n + t) * hd + k]!;
                assert.ok(Math.abs(x - y) < 1e-5, `${fresh} step ${s}: ${y} vs ${x}`);
              }
            }
          }
          filled[2 * l + i] = next;
          past[pastName] = f32(full, [B, KV, P + n, hd]);
        }
      }
      P += n;
    }
    assert.ok(worst < 1e-5, `logits differ by ${worst}`);
    await concat.release();
    await buffered.release();
  });
}

/** A three-token prompt pass of a decoding graph of `tiny` with an empty cache: the feeds. */
const tiny = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32 });
function promptFeeds(form: "buffer" | "concat"): Record<string, InstanceType<ReturnType<typeof loadOrt>["Tensor"]>> {
  const ort = loadOrt();
  const empty = (): InstanceType<typeof ort.Tensor> => new ort.Tensor("float32", new Float32Array(0), [1, 2, 0, 8]);
  return {
    input_ids: new ort.Tensor("int32", Int32Array.of(1, 7, 9), [1, 3]),
    positions: new ort.Tensor("int32", Int32Array.of(0, 1, 2), [1, 3]),
    attn_bias: new ort.Tensor("float32", new Float32Array(9).map((_, i) => (i % 3 > Math.floor(i / 3) ? -1e9 : 0)), [1, 1, 3, 3]),
    [form === "buffer" ? GraphNames.keyCache(0) : GraphNames.pastKey(0)]: empty(),
    [form === "buffer" ? GraphNames.valueCache(0) : GraphNames.pastValue(0)]: empty(),
  };
}

test("a graph written as files keeps its large weights in weights.bin at aligned offsets, and ORT loads them", async () => {
  const c = tiny;
  const w = initWeights(c, 2);
  const dir = mkdtempSync(join(tmpdir(), "sts-files-"));
  try {
    const graph = bufferedDecodeGraph(c, { weights: w });
    const path = writeModelFiles(graph, dir);
    const model = decodeModel(readFileSync(path));
    const external = model.graph.initializer.filter((t) => t.data_location === 1);
    const embed = external.find((t) => t.name === "model.embed_tokens.weight");
    assert.ok(embed, "the embedding (40 × 32 floats) is external");
    const entry = (t: typeof embed, key: string): number => Number(t!.external_data!.find((e) => e.key === key)!.value);
    for (const t of external) {
      assert.equal(entry(t, "offset") % 65536, 0, `${t.name}: aligned`);
      assert.equal(entry(t, "length"), t.dims.reduce((a, b) => a * b, 1) * 4);
      assert.equal(t.raw_data, undefined);
    }
    // Small tensors (norm weights: 128 bytes) stay inline; the file holds the rest.
    assert.ok(model.graph.initializer.some((t) => t.data_location !== 1 && t.raw_data));
    assert.ok(statSync(join(dir, "weights.bin")).size >= entry(embed, "offset") + entry(embed, "length"));
    const fromFiles = await createSession(path, { threads: 1 });
    const inline = await createSession(graph.toBytes(), { threads: 1 });
    const feeds = promptFeeds("buffer");
    const a = (await fromFiles.run(feeds))["logits"]!.data as Float32Array;
    const b = (await inline.run(feeds))["logits"]!.data as Float32Array;
    assert.deepEqual(a, b);
    await fromFiles.release();
    await inline.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the exported inference model keeps its weights beside model.onnx above the inline limit, and loads the same", async () => {
  const c = tiny;
  const w = initWeights(c, 3);
  const dir = mkdtempSync(join(tmpdir(), "sts-export-"));
  try {
    assert.deepEqual(await writeInferenceModel(dir, c, w, 1000), ["model.onnx", "model.onnx.data"]);
    const split = await createSession(join(dir, "model.onnx"), { threads: 1 });
    const inline = await createSession(exportInferenceModel(c, w), { threads: 1 });
    const feeds = promptFeeds("concat");
    assert.deepEqual((await split.run(feeds))["logits"]!.data, (await inline.run(feeds))["logits"]!.data);
    await split.release();
    await inline.release();
    // Saved again small: one file, and no stale weights beside it.
    assert.deepEqual(await writeInferenceModel(dir, c, w), ["model.onnx"]);
    assert.ok(!existsSync(join(dir, "model.onnx.data")));
    assert.ok(readFileSync(join(dir, "model.onnx")).byteLength > 40 * 32 * 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
