// A parameter taken as row blocks (the webgpu engine's form for a table larger than one GPU buffer) gives the
// graphs' results unchanged: loss, metrics, log-probabilities and decoding logits equal, and the blocks' gradients
// are the rows of the whole table's gradient. On the CPU provider, where the graphs are the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bufferedDecodeGraph, dpoGraph, logProbGraph, sftGraph, type GraphOptions } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { blockName, type RowBlocks } from "../../../../src/core/engine/ort/llama/rowBlocks";
import type { GraphBuilder } from "../../../../src/core/engine/ort/onnx/graphBuilder";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { GraphNames } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { parameterShapes } from "../../../../src/core/model/architecture";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../../src/core/model/weights";
import { makeBatch } from "../../../../src/core/train/batching";
import { Rng } from "../../../../src/core/util/rng";

const micro = tinyConfig(37, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16 });
type Tensor = InstanceType<ReturnType<typeof loadOrt>["Tensor"]>;

/** Feeds of the weights, whole or as row blocks of `blocks`. */
function weightFeeds(c: ModelConfig, w: HostWeights, blocks?: RowBlocks): Record<string, Tensor> {
  const ort = loadOrt();
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of parameterShapes(c)) {
    const data = w.get(name)!.data as Float32Array;
    const rows = blocks?.get(name);
    if (!rows) {
      out[name] = new ort.Tensor("float32", data, shape);
      continue;
    }
    const width = shape.slice(1).reduce((a, b) => a * b, 1);
    let start = 0;
    rows.forEach((n, k) => {
      out[blockName(name, k)] = new ort.Tensor("float32", data.subarray(start * width, (start + n) * width), [n, ...shape.slice(1)]);
      start += n;
    });
  }
  return out;
}

/** A gradient output joined over its blocks, by parameter name. */
function joined(out: Record<string, { data: unknown }>, name: string, blocks: RowBlocks): Float32Array {
  const rows = blocks.get(name);
  if (!rows) return out[GraphNames.grad(name)]!.data as Float32Array;
  const parts = rows.map((_, k) => out[GraphNames.grad(blockName(name, k))]!.data as Float32Array);
  const whole = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    whole.set(p, at);
    at += p.length;
  }
  return whole;
}

const close = (a: Float32Array, x: Float32Array, label: string): void => {
  assert.equal(x.length, a.length, label);
  const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
  a.forEach((v, i) => assert.ok(Math.abs(v - x[i]!) <= 2e-5 * scale, `${label}[${i}]: whole ${v} vs blocks ${x[i]}`));
};

for (const tied of [true, false]) {
  for (const chunkRows of [undefined, 6]) {
    test(`training and scoring graphs with the vocabulary tables in 3 row blocks equal the whole tables (${tied ? "tied" : "untied"}, ${chunkRows ? "vocabulary chunks of 6 rows" : "whole vocabulary"})`, async () => {
      const ort = loadOrt();
      const c: ModelConfig = { ...micro, tie_word_embeddings: tied };
      const w = initWeights(c, 5, 0.4);
      const blocks: RowBlocks = new Map([["model.embed_tokens.weight", [13, 13, 11]], ...(tied ? [] : ([["lm_head.weight", [20, 17]]] as const))]);
      const rng = new Rng(3);
      const seqs = Array.from({ length: 4 }, (_, i) => ({ ids: Array.from({ length: 5 + i }, () => rng.int(0, 36)), promptLength: 2 }));
      const batch = makeBatch(seqs, 0, 16);
      const dims = [batch.batch, batch.length];
      const data = { input_ids: new ort.Tensor("int32", batch.inputs, dims), targets: new ort.Tensor("int32", batch.targets, dims), mask: new ort.Tensor("float32", Float32Array.from(batch.mask), dims) };
      const scalar = (x: number): Tensor => new ort.Tensor("float32", Float32Array.of(x), []);
      const graphs: Array<[string, (c: ModelConfig, o: GraphOptions) => GraphBuilder, Record<string, Tensor>]> = [
        ["sft", sftGraph, { scale: scalar(1) }],
        ["dpo", dpoGraph, { scale: scalar(1), beta: scalar(0.1), ref_chosen: new ort.Tensor("float32", Float32Array.of(-20, -25), [2]), ref_rejected: new ort.Tensor("float32", Float32Array.of(-22, -21), [2]) }],
        ["logprobs", logProbGraph, {}],
      ];
      for (const [name, make, extra] of graphs) {
        const run = async (o: GraphOptions, wf: Record<string, Tensor>): Promise<Record<string, { data: unknown }>> => {
          const session = await createSession(make(c, { vocabChunkRows: chunkRows, ...o }).toBytes(), { threads: 1 });
          const out = await session.run({ ...data, ...extra, ...wf });
          await session.release();
          return out as unknown as Record<string, { data: unknown }>;
        };
        const whole = await run({}, weightFeeds(c, w));
        const split = await run({ blocks }, weightFeeds(c, w, blocks));
        for (const key of Object.keys(whole).filter((k) => !k.startsWith("grad."))) close(whole[key]!.data as Float32Array, split[key]!.data as Float32Array, `${name} ${key}`);
        if (name === "logprobs") continue;
        for (const [param] of parameterShapes(c)) close(joined(whole, param, new Map()), joined(split, param, blocks), `${name} grad ${param}`);
      }
    });
  }
}

test("the decoding graph with the vocabulary tables in row blocks gives the same logits", async () => {
  const ort = loadOrt();
  const c: ModelConfig = { ...micro, tie_word_embeddings: false };
  const w = initWeights(c, 6, 0.4);
  const blocks: RowBlocks = new Map([["model.embed_tokens.weight", [30, 7]], ["lm_head.weight", [5, 5, 27]]]);
  const KV = c.num_key_value_heads;
  const hd = c.hidden_size / c.num_attention_heads;
  const feeds: Record<string, Tensor> = {
    input_ids: new ort.Tensor("int32", Int32Array.of(1, 33, 6, 36), [1, 4]),
    positions: new ort.Tensor("int32", Int32Array.of(0, 1, 2, 3), [1, 4]),
    attn_bias: new ort.Tensor("float32", new Float32Array(16).map((_, i) => (i % 4 > Math.floor(i / 4) ? -1e9 : 0)), [1, 1, 4, 4]),
  };
  for (let l = 0; l < c.num_hidden_layers; l++) {
    feeds[GraphNames.keyCache(l)] = new ort.Tensor("float32", new Float32Array(0), [1, KV, 0, hd]);
    feeds[GraphNames.valueCache(l)] = new ort.Tensor("float32", new Float32Array(0), [1, KV, 0, hd]);
  }
  const logits = async (o: GraphOptions, wf: Record<string, Tensor>): Promise<Float32Array> => {
    const session = await createSession(bufferedDecodeGraph(c, o).toBytes(), { threads: 1 });
    const out = await session.run({ ...feeds, ...wf });
    await session.release();
    return out["logits"]!.data as Float32Array;
  };
  close(await logits({}, weightFeeds(c, w)), await logits({ blocks }, weightFeeds(c, w, blocks)), "logits");
});
