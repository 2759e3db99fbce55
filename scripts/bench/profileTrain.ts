/**
 * Where an ORT training step's time goes (a diagnostic beside `npm run bench:train`, not part of it): the SFT or DPO
 * graph as OrtEngine opens it, run with ONNX Runtime's profiler on, and its kernel time split by op type and by
 * node, with the matrix products' achieved GFLOP/s by shape. What it showed at the 135M preset (8 × 128 tokens, one
 * thread, 2 quiet cores): Gemm 88% of the kernel time; the x·Wᵀ products at 92-95 GFLOP/s, the weight gradients
 * (dYᵀ·X) at 78-83, the tied head's gradient [49152, 576] at 51-55 (its output, 113 MB, accumulated over K blocks,
 * falls out of cache; chunking the vocabulary or transposing either operand measured no faster).
 *
 *   npx tsx scripts/bench/profileTrain.ts [-- --preset smollm2-135m --kind sft --threads 1 --reps 2 --batch 8 --length 128 --top 25]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initWeights } from "../../src/core/model/weights";
import { dpoGraph, sftGraph } from "../../src/core/engine/ort/llama/llamaGraphs";
import { loadOrt, type OrtTensor } from "../../src/core/engine/ort/runtime/ortRuntime";
import { Rng } from "../../src/core/util/rng";
import { COMMON_OPTIONS, benchConfig, loadLine } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    kind: { type: "string", default: "sft" },
    threads: { type: "string", default: "1" },
    reps: { type: "string", default: "2" },
    batch: { type: "string", default: "8" },
    length: { type: "string", default: "128" },
    top: { type: "string", default: "25" },
    chunk: { type: "string", default: "" },
  },
});
const c = benchConfig(values);
const ort = loadOrt();
const B = Number(values.batch);
const T = Number(values.length);
const kind = values.kind === "dpo" ? "dpo" : "sft";

async function main(): Promise<void> {
  console.log(`profileTrain ${kind} ${B}×${T}, ${values.threads} thread(s), load ${loadLine()}`);
  const dir = mkdtempSync(join(tmpdir(), "proftrain-"));
  const graph = (kind === "sft" ? sftGraph : dpoGraph)(c, { ropeRows: T, ...(values.chunk ? { vocabChunkRows: Number(values.chunk) } : {}) });
  const session = await ort.InferenceSession.create(graph.toBytes(), {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: Number(values.threads),
    executionMode: "sequential",
    enableMemPattern: false,
    enableProfiling: true,
    profileFilePrefix: join(dir, "p"),
    extra: { session: { intra_op: { allow_spinning: "1" } } },
  });
  const feeds: Record<string, OrtTensor> = {};
  for (const [name, w] of initWeights(c, 0)) feeds[name] = new ort.Tensor("float32", w.data, w.shape);
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(3, c.vocab_size - 1));
  feeds["input_ids"] = new ort.Tensor("int32", ids, [B, T]);
  feeds["targets"] = new ort.Tensor("int32", ids.map((x) => (x + 1) % c.vocab_size), [B, T]);
  feeds["mask"] = new ort.Tensor("float32", new Float32Array(B * T).fill(1), [B, T]);
  feeds["scale"] = new ort.Tensor("float32", new Float32Array([1]), []);
  if (kind === "dpo") {
    feeds["ref_chosen"] = new ort.Tensor("float32", new Float32Array(B / 2).fill(-500), [B / 2]);
    feeds["ref_rejected"] = new ort.Tensor("float32", new Float32Array(B / 2).fill(-500), [B / 2]);
    feeds["beta"] = new ort.Tensor("float32", new Float32Array([0.1]), []);
  }
  const reps = Number(values.reps);
  const walls: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t = performance.now();
    await session.run(feeds);
    walls.push(performance.now() - t);
  }
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.endsWith(".json"));
  const events = JSON.parse(readFileSync(join(dir, file!), "utf8")) as Array<{ cat: string; name: string; dur: number; args?: Record<string, unknown> }>;
  rmSync(dir, { recursive: true, force: true });
  // Node events: "<node>_kernel_time" with args.op_name; the first run is a warm-up, dropped.
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run");
  const firstEnd = runs.length > 1 ? (runs[0] as unknown as { ts: number }).ts + runs[0]!.dur : 0;
  const nodes = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time") && (e as unknown as { ts: number }).ts > firstEnd);
  const byOp = new Map<string, { us: number; n: number }>();
  const byNode = new Map<string, { us: number; op: string; shapes: string }>();
  for (const e of nodes) {
    const op = String(e.args?.["op_name"] ?? "?");
    const o = byOp.get(op) ?? { us: 0, n: 0 };
    o.us += e.dur;
    o.n += 1;
    byOp.set(op, o);
    const key = e.name.replace(/_kernel_time$/, "");
    const shapes = JSON.stringify(e.args?.["input_type_shape"] ?? "").replace(/"float":|\{|\}|"/g, "").slice(0, 80);
    const nd = byNode.get(key) ?? { us: 0, op, shapes };
    nd.us += e.dur;
    byNode.set(key, nd);
  }
  const total = [...byOp.values()].reduce((s, o) => s + o.us, 0) / reps;
  console.log(`wall per run (ms): ${walls.map((w) => w.toFixed(0)).join(", ")} (first is warm-up); kernel sum per run ${(total / 1000).toFixed(0)} ms`);
  console.log("by op type (ms per run, share, count per run):");
  for (const [op, o] of [...byOp].sort((a, b) => b[1].us - a[1].us)) console.log(`  ${op.padEnd(28)} ${(o.us / reps / 1000).toFixed(1).padStart(8)}  ${((100 * o.us) / reps / total).toFixed(1).padStart(5)}%  ${o.n / reps}`);
  // GEMMs grouped by their operand and output shapes, with the rate each achieved (2·M·N·K per run).
  const gemms = new Map<string, { us: number; n: number; flop: number }>();
  for (const e of nodes) {
    const op = String(e.args?.["op_name"] ?? "");
    if (op !== "Gemm" && op !== "MatMul" && op !== "FusedMatMul") continue;
    const ins = (e.args?.["input_type_shape"] as Array<Record<string, number[]>> | undefined)?.map((x) => Object.values(x)[0]!) ?? [];
    const out = (e.args?.["output_type_shape"] as Array<Record<string, number[]>> | undefined)?.map((x) => Object.values(x)[0]!)[0] ?? [];
    const a = ins[0] ?? [];
    const outN = out.reduce((s, x) => s * x, 1);
    // K: A's elements over the output's rows (A is [..., M, K] or its transpose).
    const rows = out.slice(0, -1).reduce((s, x) => s * x, 1);
    const K = a.reduce((s, x) => s * x, 1) / rows;
    const key = `${op} ${JSON.stringify(ins)} -> ${JSON.stringify(out)}`;
    const g = gemms.get(key) ?? { us: 0, n: 0, flop: 0 };
    g.us += e.dur;
    g.n += 1;
    g.flop += 2 * outN * K;
    gemms.set(key, g);
  }
  console.log("matrix products by shape (ms per run, count per run, GFLOP/s):");
  for (const [key, g] of [...gemms].sort((a, b) => b[1].us - a[1].us).slice(0, 20)) console.log(`  ${(g.us / reps / 1000).toFixed(1).padStart(8)}  ${String(g.n / reps).padStart(4)}  ${(g.flop / g.us / 1000).toFixed(1).padStart(6)}  ${key}`);
  console.log("top nodes:");
  for (const [name, n] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, Number(values.top))) console.log(`  ${(n.us / reps / 1000).toFixed(2).padStart(8)} ms  ${n.op.padEnd(18)} ${name.slice(0, 50).padEnd(50)} ${n.shapes}`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
