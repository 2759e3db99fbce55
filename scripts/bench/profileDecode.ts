/**
 * Where an ORT decode step's time goes (a diagnostic beside `npm run bench:sample`, not part of it): the decode
 * graph driven the way OrtEngine drives it, timed in three parts — building the feeds in JavaScript, the
 * `session.run` call, taking the outputs — and, in a second pass with ORT's profiler on, the native run time
 * split into kernels by op type. Cumulative variants try changes to the engine without touching it:
 *   engine    the decode graph and feeds exactly as OrtEngine has them (weights fed as inputs every step);
 *   init      the weights embedded as initializers (exportInferenceModel's graph): ORT pre-packs Gemm weights once;
 *   noid      also the Identity copies before the present_key/present_value outputs removed (the Concat writes
 *             the graph output itself; the graph is rewritten here through decodeModel/encodeModel);
 *   prealloc  also present_key/present_value written into pre-allocated ping-pong buffers (run's `fetches`)
 *             instead of fresh ORT allocations handed to JavaScript every step.
 *
 *   npx tsx scripts/bench/profileDecode.ts [-- --batches 1,16,64 --prompt 32 --new 128 --threads 1 --variants engine,init,noid,prealloc]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PerformanceObserver } from "node:perf_hooks";
import { headDim } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { decodeGraph, GraphNames } from "../../src/core/onnx/llamaGraphs";
import { decodeModel, encodeModel } from "../../src/core/onnx/onnxProto";
import { loadOrt, type OrtSession, type OrtTensor } from "../../src/core/onnx/ortRuntime";
import { Rng } from "../../src/core/util/rng";
import { COMMON_OPTIONS, benchConfig, fmtRate, loadLine, pause, printTable } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    batches: { type: "string", default: "1,16,64" },
    prompt: { type: "string", default: "32" },
    new: { type: "string", default: "128" },
    threads: { type: "string", default: "1" },
    reps: { type: "string", default: "3" },
    variants: { type: "string", default: "engine,init,noid,prealloc" },
  },
});
const c = benchConfig(values);
const P = Number(values.prompt);
const N = Number(values.new);
const threads = Number(values.threads);
const ort = loadOrt();
const weights = initWeights(c, 0);
const KV = c.num_key_value_heads;
const hd = headDim(c);
type Variant = "engine" | "init" | "noid" | "prealloc";
const embedded = (v: Variant): boolean => v !== "engine";
type Feeds = Record<string, OrtTensor>;

/** The graph without Identity nodes that only copy a node's result into a graph output. */
function withoutOutputIdentities(bytes: Uint8Array): Uint8Array {
  const model = decodeModel(bytes);
  const g = model.graph;
  const outputs = new Set(g.output.map((o) => o.name));
  const inputs = new Set([...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name)]);
  const rename = new Map<string, string>();
  g.node = g.node.filter((n) => {
    const from = n.input[0]!;
    const to = n.output[0]!;
    if (n.op_type !== "Identity" || !outputs.has(to) || inputs.has(from) || outputs.has(from) || rename.has(from)) return true;
    rename.set(from, to);
    return false;
  });
  for (const n of g.node) {
    n.input = n.input.map((x) => rename.get(x) ?? x);
    n.output = n.output.map((x) => rename.get(x) ?? x);
  }
  if (g.value_info) g.value_info = g.value_info.filter((v) => !rename.has(v.name));
  return encodeModel(model);
}

async function open(variant: Variant, profilePrefix?: string): Promise<OrtSession> {
  let bytes = (embedded(variant) ? decodeGraph(c, { weights }) : decodeGraph(c)).toBytes();
  if (variant === "noid" || variant === "prealloc") bytes = withoutOutputIdentities(bytes);
  return ort.InferenceSession.create(bytes, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    executionMode: "sequential",
    ...(profilePrefix ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
    extra: { session: { intra_op: { allow_spinning: values.spin === "off" ? "0" : "1" } } },
  });
}

interface Split {
  feeds: number;
  run: number;
  outputs: number;
  steps: number;
  /** Minor page faults during session.run: fresh memory touched for the first time. */
  faults: number;
}

/** Milliseconds of V8 garbage collection so far: ORT outputs are external ArrayBuffers whose size V8 counts. */
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ["gc"] });

/** One generation as OrtEngine runs it (no padding: every bias entry is 0); times summed into `split`. */
async function generate(session: OrtSession, variant: Variant, B: number, rng: Rng, split: Split): Promise<void> {
  const f32 = (d: Float32Array, dims: number[]): OrtTensor => new ort.Tensor("float32", d, dims);
  const L = c.num_hidden_layers;
  const names = Array.from({ length: L }, (_, l) => [GraphNames.pastKey(l), GraphNames.pastValue(l), GraphNames.presentKey(l), GraphNames.presentValue(l)] as const);
  // prealloc: two buffers per cache tensor at full length; each step reads one and writes the other.
  const cap = B * KV * (P + N) * hd;
  const pingPong = variant === "prealloc" ? names.map(() => [0, 1].map(() => [new Float32Array(cap), new Float32Array(cap)])) : null;
  let cache: Feeds = {};
  for (const [pk, pv] of names) {
    cache[pk] = f32(new Float32Array(0), [B, KV, 0, hd]);
    cache[pv] = f32(new Float32Array(0), [B, KV, 0, hd]);
  }
  let past = 0;
  for (let s = 0; s < N; s++) {
    const n = s === 0 ? P : 1;
    const Tk = past + n;
    let t = performance.now();
    const feeds: Feeds = { ...cache };
    if (!embedded(variant)) for (const [name, w] of weights) feeds[name] = f32(w.data, w.shape);
    const ids = Int32Array.from({ length: B * n }, () => rng.int(3, c.vocab_size - 1));
    const pos = Int32Array.from({ length: B * n }, (_, i) => past + (i % n));
    feeds["input_ids"] = new ort.Tensor("int32", ids, [B, n]);
    feeds["positions"] = new ort.Tensor("int32", pos, [B, n]);
    const bias = new Float32Array(B * n * Tk);
    for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) for (let j = past + i + 1; j < Tk; j++) bias[(b * n + i) * Tk + j] = -1e9;
    feeds["attn_bias"] = f32(bias, [B, 1, n, Tk]);
    let fetches: Record<string, OrtTensor | null> | undefined;
    if (pingPong) {
      fetches = { logits: null };
      names.forEach((nm, l) => {
        for (const kv of [0, 1]) fetches![nm[2 + kv]!] = f32(pingPong[l]![kv]![s % 2]!.subarray(0, B * KV * Tk * hd), [B, KV, Tk, hd]);
      });
    }
    let u = performance.now();
    if (s > 0) split.feeds += u - t;
    t = u;
    const faults = process.resourceUsage().minorPageFault;
    const out = (await (fetches ? session.run(feeds, fetches) : session.run(feeds))) as unknown as Record<string, { data: Float32Array }>;
    u = performance.now();
    if (s > 0) {
      split.run += u - t;
      split.faults += process.resourceUsage().minorPageFault - faults;
    }
    t = u;
    const next: Feeds = {};
    for (const [pk, pv, nk, nv] of names) {
      next[pk] = f32(out[nk]!.data, [B, KV, Tk, hd]);
      next[pv] = f32(out[nv]!.data, [B, KV, Tk, hd]);
    }
    cache = next;
    past = Tk;
    void out["logits"]!.data;
    if (s > 0) {
      split.outputs += performance.now() - t;
      split.steps++;
    }
  }
}

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

/** Kernel microseconds by op type, and native model_run microseconds, of the profiled cached steps. */
function readProfile(dir: string): { byOp: Map<string, number>; modelRun: number; runs: number } {
  const file = readdirSync(dir).find((f) => f.endsWith(".json"));
  if (!file) throw new Error("ORT wrote no profile");
  const events = JSON.parse(readFileSync(join(dir, file), "utf8")) as ProfileEvent[];
  const byOp = new Map<string, number>();
  let modelRun = 0;
  let runs = 0;
  // Only the runs on one new token: the prompt pass is a different shape and is left out, as in the timing.
  const prefill = new Set<number>();
  let idx = -1;
  for (const e of events) {
    if (e.cat === "Session" && e.name === "model_run") {
      idx++;
      if (idx % N === 0) prefill.add(idx);
      else {
        modelRun += e.dur;
        runs++;
      }
    }
  }
  // Node events precede their model_run event: attribute them to the run that follows.
  let run = 0;
  for (const e of events) {
    if (e.cat === "Session" && e.name === "model_run") run++;
    else if (e.cat === "Node" && e.name.endsWith("_kernel_time") && !prefill.has(run)) {
      const op = e.args?.op_name ?? "?";
      byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    }
  }
  return { byOp, modelRun, runs };
}

async function main(): Promise<void> {
  console.log(`decode profile: ${c.hidden_size} hidden, ${c.num_hidden_layers} layers; prompt ${P}, ${N} new tokens; ORT ${ort.env.versions?.common ?? ""} ${threads} thread(s); load ${loadLine()}`);
  const batches = values.batches.split(",").map(Number);
  const variants = values.variants.split(",") as Variant[];
  const rng = new Rng(3);
  const rows: string[][] = [];
  const profiles: Array<{ label: string; byOp: Map<string, number>; perStep: number }> = [];
  for (const variant of variants) {
    const session = await open(variant);
    for (const B of batches) {
      const split: Split = { feeds: 0, run: 0, outputs: 0, steps: 0, faults: 0 };
      await generate(session, variant, B, rng, { feeds: 0, run: 0, outputs: 0, steps: 0, faults: 0 });
      await pause(0);
      const gc0 = gcMs;
      for (let r = 0; r < Number(values.reps); r++) await generate(session, variant, B, rng, split);
      await pause(0);
      const gcPerStep = (gcMs - gc0) / split.steps;
      const per = (x: number): string => (x / split.steps).toFixed(3);
      const dir = mkdtempSync(join(tmpdir(), "ort-profile-"));
      const profiled = await open(variant, join(dir, "decode"));
      await generate(profiled, variant, B, rng, { feeds: 0, run: 0, outputs: 0, steps: 0, faults: 0 });
      profiled.endProfiling();
      await profiled.release();
      const { byOp, modelRun, runs } = readProfile(dir);
      rmSync(dir, { recursive: true, force: true });
      const kernels = [...byOp.values()].reduce((a, b) => a + b, 0);
      const stepMs = (split.feeds + split.run + split.outputs) / split.steps;
      rows.push([variant, String(B), per(split.feeds), per(split.run), per(split.outputs), (split.faults / split.steps).toFixed(0), gcPerStep.toFixed(3), (modelRun / runs / 1000).toFixed(3), (kernels / runs / 1000).toFixed(3), fmtRate((B * 1000) / stepMs)]);
      profiles.push({ label: `${variant} B=${B}`, byOp, perStep: runs });
    }
    await session.release();
  }
  console.log("\nper cached step, ms (the prompt pass left out); native run and kernel sums from a second, profiled pass:");
  printTable(["variant", "B", "JS feeds", "session.run", "JS outputs", "page faults in run", "GC (all)", "native model_run", "Σ kernels", "step tok/s"], rows);
  for (const p of profiles) {
    const total = [...p.byOp.values()].reduce((a, b) => a + b, 0);
    const top = [...p.byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
    console.log(`\n${p.label}: kernels ${(total / p.perStep / 1000).toFixed(3)} ms per step — ${top.map(([op, us]) => `${op} ${((100 * us) / total).toFixed(0)}%`).join(", ")}`);
  }
}

main().catch((e: unknown) => {
  console.error(`profileDecode: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
