import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { runOnSoftwareGpu, softwareGpuSkip } from "../../../helpers/softwareGpu";
import { gradCheck } from "./gradCheck";
import { GraphBuilder } from "../../../../src/core/engine/ort/onnx/graphBuilder";
import { vocabularyChunks } from "../../../../src/core/engine/ort/llama/vocabularyChunks";
import { projectedTokenLogProbs, tokenLogProbs } from "../../../../src/core/engine/ort/llama/llamaOps";
import { dpoGraph, logProbGraph, sftGraph, type GraphOptions } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { parameterShapes } from "../../../../src/core/model/architecture";
import { initWeights } from "../../../../src/core/model/weights";
import { makeBatch } from "../../../../src/core/train/batching";
import { Rng } from "../../../../src/core/util/rng";

test("vocabulary chunks: near-equal sizes covering every row once", () => {
  assert.deepEqual(vocabularyChunks(11, 4), [{ start: 0, size: 4 }, { start: 4, size: 4 }, { start: 8, size: 3 }]);
  assert.deepEqual(vocabularyChunks(8, 8), [{ start: 0, size: 8 }]);
  const qwen = vocabularyChunks(151936, 16384);
  assert.equal(qwen.length, 10);
  assert.equal(qwen.reduce((n, c) => n + c.size, 0), 151936);
  assert.ok(qwen.every((c) => c.size <= 16384 && c.size >= 15190));
});

// Eleven vocabulary rows in chunks of at most 4 (4, 4, 3): targets in the first, a middle and the short last
// chunk, and on the chunks' edges.
const targets = [0, 10, 4, 3, 8, 7];

test("the chunked output projection's log-probabilities match float64 finite differences (VJP of h and w)", async () => {
  const r = await gradCheck([{ shape: [6, 3], declared: ["N", 3] }, { shape: [11, 3] }, { shape: [6], declared: ["N"], ints: { values: targets, dtype: "int32" } }], (b, [h, w, t]) =>
    projectedTokenLogProbs(b, h!, w!, t!, 4),
  );
  assert.ok(r.count === 6 * 3 + 11 * 3);
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError.toExponential(2)}`);
});

test("the embedding gradient matches float64 finite differences (repeated rows, unused rows)", async () => {
  const r = await gradCheck([{ shape: [7, 3] }, { shape: [2, 4], ints: { values: [0, 2, 2, 6, 0, 0, 5, 2], dtype: "int32" } }], (b, [e, i]) => b.gather(e!, i!));
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError.toExponential(2)}`);
});

test("chunked and whole log-probabilities agree in float32, with logits far beyond exp's range", async () => {
  const ort = loadOrt();
  const b = new GraphBuilder("compare", "float32");
  const h = b.input("h", "float32", ["N", 3]);
  const w = b.input("w", "float32", [11, 3]);
  const t = b.input("t", "int32", ["N"]);
  b.output(projectedTokenLogProbs(b, h, w, t, 4), "chunked");
  b.output(tokenLogProbs(b, b.gemm(h, w, false, true), t), "whole");
  const session = await createSession(b.toBytes(), { threads: 1 });
  const rng = new Rng(5);
  for (const spread of [1, 300]) {
    const hv = Float32Array.from({ length: 18 }, () => rng.normal() * spread);
    const wv = Float32Array.from({ length: 33 }, () => rng.normal());
    const out = await session.run({ h: new ort.Tensor("float32", hv, [6, 3]), w: new ort.Tensor("float32", wv, [11, 3]), t: new ort.Tensor("int32", Int32Array.from(targets), [6]) });
    const chunked = out.chunked!.data as Float32Array;
    const whole = out.whole!.data as Float32Array;
    chunked.forEach((x, i) => assert.ok(Number.isFinite(x) && Math.abs(x - whole[i]!) <= 1e-5 * Math.max(1, Math.abs(whole[i]!)), `spread ${spread} row ${i}: ${x} vs ${whole[i]}`));
  }
  await session.release();
});

// The training and scoring graphs with a 37-token vocabulary in chunks of 8 (five chunks, the last of 5) give
// what the whole-vocabulary graphs give, loss, metrics and every gradient, tied or not.
const micro = tinyConfig(37, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16 });
// STS_VOCAB_PROVIDER=webgpu runs them on the webgpu provider (the webgpu test below starts a child so).
const provider = process.env["STS_VOCAB_PROVIDER"] === "webgpu" ? "webgpu" : "cpu";
for (const tied of [false, true]) {
  test(`SFT, DPO and log-prob graphs in vocabulary chunks equal the whole-vocabulary graphs (float32, ${tied ? "tied" : "untied"}, ${provider})`, async () => {
    const ort = loadOrt();
    const c: ModelConfig = { ...micro, tie_word_embeddings: tied };
    const w = initWeights(c, 4, 0.4);
    const rng = new Rng(9);
    const seqs = Array.from({ length: 4 }, (_, i) => ({ ids: Array.from({ length: 5 + i }, () => rng.int(0, 36)), promptLength: 2 }));
    const batch = makeBatch(seqs, 0, 16);
    const dims = [batch.batch, batch.length];
    const feeds = (extra: Record<string, InstanceType<typeof ort.Tensor>>): Record<string, InstanceType<typeof ort.Tensor>> => {
      const out: Record<string, InstanceType<typeof ort.Tensor>> = {
        input_ids: new ort.Tensor("int32", batch.inputs, dims),
        targets: new ort.Tensor("int32", batch.targets, dims),
        mask: new ort.Tensor("float32", Float32Array.from(batch.mask), dims),
        ...extra,
      };
      for (const [name, shape] of parameterShapes(c)) out[name] = new ort.Tensor("float32", w.get(name)!.data, shape);
      return out;
    };
    const scalar = (x: number): InstanceType<typeof ort.Tensor> => new ort.Tensor("float32", Float32Array.of(x), []);
    const graphs: Array<[string, (c: ModelConfig, o: GraphOptions) => GraphBuilder, Record<string, InstanceType<typeof ort.Tensor>>]> = [
      ["sft", sftGraph, { scale: scalar(1) }],
      ["dpo", dpoGraph, { scale: scalar(1), beta: scalar(0.1), ref_chosen: new ort.Tensor("float32", Float32Array.of(-20, -25), [2]), ref_rejected: new ort.Tensor("float32", Float32Array.of(-22, -21), [2]) }],
      ["logprobs", logProbGraph, {}],
    ];
    for (const [name, make, extra] of graphs) {
      const chunkedGraph = make(c, { vocabChunkRows: 8 });
      // The projection in five chunks: five Gemms forward (plus their recomputation and VJP in training).
      assert.ok((chunkedGraph.opCounts().get("Gemm") ?? 0) >= (make(c, {}).opCounts().get("Gemm") ?? 0) + 4, `${name}: the projection is chunked`);
      const results = await Promise.all([make(c, {}), chunkedGraph].map(async (g) => {
        const session = await createSession(g.toBytes(), { threads: 1, executionProvider: provider });
        const out = await session.run(feeds(extra));
        await session.release();
        return out;
      }));
      const [whole, chunked] = results as unknown as [Record<string, { data: unknown }>, Record<string, { data: unknown }>];
      assert.deepEqual(Object.keys(chunked).sort(), Object.keys(whole).sort());
      for (const key of Object.keys(whole)) {
        const a = whole[key]!.data as Float32Array;
        const x = chunked[key]!.data as Float32Array;
        const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
        a.forEach((v, i) => assert.ok(Math.abs(v - x[i]!) <= 2e-5 * scale, `${name} ${key}[${i}]: whole ${v} vs chunked ${x[i]}`));
      }
    }
  });
}

// Qwen's vocabulary, 8 × 160 tokens, hidden 32: before the chunks an SFT step peaked at 6.8 GB and a DPO step at
// 5.3 GB (whole [1280, 151936] logits, their log-softmax, softmax and gradient, and the embedding's one-hot,
// 0.78 GB each); in chunks both stay under 1 GB. Each step runs in a child that reads its own VmHWM.
for (const kind of ["sft", "dpo"]) {
  test(`${kind === "sft" ? "an SFT" : "a DPO"} step with a 151,936-token vocabulary peaks below 2 GB (vocabulary chunks)`, () => {
    const child = resolve(__dirname, "vocabularyMemory.child.ts");
    const out = execFileSync(process.execPath, ["--import", "tsx", child, kind, "default", "2", "1"], { encoding: "utf8", timeout: 120_000 });
    const result = JSON.parse(out.trim().split("\n").pop()!) as { peakMB: number; loss: number };
    assert.ok(Number.isFinite(result.loss), `loss ${result.loss}`);
    assert.ok(result.peakMB < 2048, `peak ${result.peakMB} MB`);
  });
}

// The same equality on the webgpu provider, on Mesa's software GPU as conformance.test.ts runs it: this file's
// chunk tests again in a child started with the GPU's environment.
if (provider === "cpu") {
  test("graphs in vocabulary chunks equal the whole-vocabulary graphs on the webgpu provider (software GPU)", { skip: softwareGpuSkip, timeout: 300_000 }, () => {
    const r = runOnSoftwareGpu(resolve(__dirname, "vocabularyChunks.test.ts"), { STS_VOCAB_PROVIDER: "webgpu" }, { pattern: "webgpu", timeoutMs: 290_000 });
    assert.equal(r.status, 0, `the webgpu run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /ℹ pass 2/);
  });
}
