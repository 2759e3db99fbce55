/**
 * One SFT or DPO step of a hidden-32, 2-layer qwen3 with Qwen's 151,936-token vocabulary, 8 × 160 tokens, in a
 * process of its own, which then prints its peak resident memory (VmHWM) and the step's time as one JSON line.
 * Usage: tsx vocabularyMemory.child.ts sft|dpo|logprobs [chunkRows|default|whole] [threads] [steps]; "whole" builds the
 * graphs as they were before vocabulary chunks. vocabularyChunks.test.ts runs it. MEM_VARIANT=noarena (or
 * nopattern) opens the session without ORT's CPU arena (or memory pattern), to see the live tensors alone;
 * MEM_VARIANT=profile writes ORT's per-kernel profile to /tmp/vocabprof_*.json.
 */
import { readFileSync } from "node:fs";
import { dpoGraph, logProbGraph, sftGraph } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { tinyConfig } from "../../../../src/core/model/config";
import { parameterShapes } from "../../../../src/core/model/architecture";
import { initWeights } from "../../../../src/core/model/weights";
import { Rng } from "../../../../src/core/util/rng";

const QWEN_VOCAB = 151936;

async function main(): Promise<void> {
  const [kind = "sft", rowsArg = "default", threadsArg = "2", stepsArg = "2"] = process.argv.slice(2);
  const c = tinyConfig(QWEN_VOCAB, { model_type: "qwen3", hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true });
  const vocabChunkRows = rowsArg === "whole" ? Number.POSITIVE_INFINITY : rowsArg === "default" ? undefined : Number(rowsArg);
  const graph = (kind === "dpo" ? dpoGraph : kind === "logprobs" ? logProbGraph : sftGraph)(c, vocabChunkRows === undefined ? {} : { vocabChunkRows });
  const ort = loadOrt();
  const session = process.env.MEM_VARIANT
    ? await ort.InferenceSession.create(graph.toBytes(), { executionProviders: ["cpu"], graphOptimizationLevel: "all", intraOpNumThreads: Number(threadsArg), executionMode: "sequential", enableCpuMemArena: !process.env.MEM_VARIANT.includes("noarena"), enableMemPattern: !process.env.MEM_VARIANT.includes("nopattern"), enableProfiling: process.env.MEM_VARIANT.includes("profile"), profileFilePrefix: "/tmp/vocabprof" })
    : await createSession(graph.toBytes(), { threads: Number(threadsArg) });
  const rows = 8;
  const length = 160;
  const rng = new Rng(1);
  const dims = [rows, length];
  const ids = Int32Array.from({ length: rows * length }, () => rng.int(0, QWEN_VOCAB - 1));
  const targets = Int32Array.from({ length: rows * length }, () => rng.int(0, QWEN_VOCAB - 1));
  const w = initWeights(c, 1, 0.02);
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
    input_ids: new ort.Tensor("int32", ids, dims),
    targets: new ort.Tensor("int32", targets, dims),
    mask: new ort.Tensor("float32", new Float32Array(rows * length).fill(1), dims),
  };
  if (kind !== "logprobs") feeds.scale = new ort.Tensor("float32", Float32Array.of(1), []);
  if (kind === "dpo") {
    feeds.beta = new ort.Tensor("float32", Float32Array.of(0.1), []);
    feeds.ref_chosen = new ort.Tensor("float32", new Float32Array(rows / 2).fill(-1900), [rows / 2]);
    feeds.ref_rejected = new ort.Tensor("float32", new Float32Array(rows / 2).fill(-1900), [rows / 2]);
  }
  for (const [name, shape] of parameterShapes(c)) feeds[name] = new ort.Tensor("float32", w.get(name)!.data, shape);
  const times: number[] = [];
  let loss = 0;
  for (let i = 0; i < Number(stepsArg); i++) {
    const t0 = performance.now();
    const out = await session.run(feeds);
    times.push(performance.now() - t0);
    loss = ((out.loss ?? out.seq_logps)!.data as Float32Array)[0]!;
  }
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  await session.release();
  process.stdout.write(`${JSON.stringify({ kind, rows: rowsArg, peakMB: Math.round(kb("VmHWM") / 1024), stepMs: times.map(Math.round), loss })}\n`);
}

void main();
