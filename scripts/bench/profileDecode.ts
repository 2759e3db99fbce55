/**
 * Where an ORT decode step's time goes (a diagnostic beside `npm run bench:sample`, not part of it): the decode
 * graph driven the way OrtEngine drives it, timed in three parts — building the feeds in JavaScript, the
 * `session.run` call, taking the outputs — and, in a second pass with ORT's profiler on, the native run time
 * split into kernels by op type. The variants:
 *   concat-fed  decodeGraph (past/present KV joined by Concat) with the weights fed as inputs every step: the
 *               engine before the fixed-capacity cache;
 *   concat      decodeGraph with the weights embedded as initializers: exportInferenceModel's model;
 *   buffer-fed  bufferedDecodeGraph (a fixed-capacity cache held in JavaScript, only the new keys and values
 *               returned) with the weights fed: the engine for models too large to embed;
 *   buffer      bufferedDecodeGraph with the weights embedded: the engine (OrtEngine.startDecoding).
 *
 *   npx tsx scripts/bench/profileDecode.ts [-- --batches 1,16,64 --prompt 32 --new 128 --threads 1 --variants concat-fed,concat,buffer-fed,buffer]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PerformanceObserver } from "node:perf_hooks";
import { headDim } from "../../src/core/model/architecture";
import { initWeights } from "../../src/core/model/weights";
import { bufferedDecodeGraph, decodeGraph, GraphNames } from "../../src/core/engine/ort/llama/llamaGraphs";
import { KV_BUCKET, bufferedBiasData } from "../../src/core/engine/ort/runtime/kvCache";
import { loadOrt, type OrtSession, type OrtTensor } from "../../src/core/engine/ort/runtime/ortRuntime";
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
    variants: { type: "string", default: "concat-fed,concat,buffer-fed,buffer" },
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
type Variant = "concat-fed" | "concat" | "buffer-fed" | "buffer";
const embedded = (v: Variant): boolean => !v.endsWith("-fed");
const buffered = (v: Variant): boolean => v.startsWith("buffer");
type Feeds = Record<string, OrtTensor>;

async function open(variant: Variant, profilePrefix?: string): Promise<OrtSession> {
  const options = embedded(variant) ? { weights } : {};
  const bytes = (buffered(variant) ? bufferedDecodeGraph(c, options) : decodeGraph(c, options)).toBytes();
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

/** One generation as OrtEngine runs it (no padding); times summed into `split`. */
async function generate(session: OrtSession, variant: Variant, B: number, rng: Rng, split: Split): Promise<void> {
  const f32 = (d: Float32Array, dims: number[]): OrtTensor => new ort.Tensor("float32", d, dims);
  const L = c.num_hidden_layers;
  const rows = B * KV;
  // concat: the present_* outputs become the next past_*. buffer: fixed-capacity caches grown by KV_BUCKET.
  let cache: Feeds = {};
  for (let l = 0; l < L; l++) {
    cache[GraphNames.pastKey(l)] = f32(new Float32Array(0), [B, KV, 0, hd]);
    cache[GraphNames.pastValue(l)] = f32(new Float32Array(0), [B, KV, 0, hd]);
  }
  let capacity = 0;
  let buffers: Float32Array[] = Array.from({ length: 2 * L }, () => new Float32Array(0));
  const valid = Array.from({ length: B }, () => [] as boolean[]);
  let past = 0;
  for (let s = 0; s < N; s++) {
    const n = s === 0 ? P : 1;
    const Tk = past + n;
    for (const row of valid) for (let i = 0; i < n; i++) row.push(true);
    let t = performance.now();
    const feeds: Feeds = {};
    if (!embedded(variant)) for (const [name, w] of weights) feeds[name] = f32(w.data, w.shape);
    const ids = Int32Array.from({ length: B * n }, () => rng.int(3, c.vocab_size - 1));
    const pos = Int32Array.from({ length: B * n }, (_, i) => past + (i % n));
    feeds["input_ids"] = new ort.Tensor("int32", ids, [B, n]);
    feeds["positions"] = new ort.Tensor("int32", pos, [B, n]);
    if (buffered(variant)) {
      feeds["attn_bias"] = f32(bufferedBiasData(valid, n, past, capacity), [B, 1, n, capacity + n]);
      for (let l = 0; l < L; l++) {
        feeds[GraphNames.keyCache(l)] = f32(buffers[2 * l]!, [B, KV, capacity, hd]);
        feeds[GraphNames.valueCache(l)] = f32(buffers[2 * l + 1]!, [B, KV, capacity, hd]);
      }
    } else {
      Object.assign(feeds, cache);
      const bias = new Float32Array(B * n * Tk);
      for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) for (let j = past + i + 1; j < Tk; j++) bias[(b * n + i) * Tk + j] = -1e9;
      feeds["attn_bias"] = f32(bias, [B, 1, n, Tk]);
    }
    let u = performance.now();
    if (s > 0) split.feeds += u - t;
    t = u;
    const faults = process.resourceUsage().minorPageFault;
    const out = (await session.run(feeds)) as unknown as Record<string, { data: Float32Array }>;
    u = performance.now();
    if (s > 0) {
      split.run += u - t;
      split.faults += process.resourceUsage().minorPageFault - faults;
    }
    t = u;
    if (buffered(variant)) {
      if (Tk > capacity) {
        const next = Math.ceil(Tk / KV_BUCKET) * KV_BUCKET;
        buffers = buffers.map((old) => {
          const fresh = new Float32Array(rows * next * hd);
          for (let r = 0; r < rows; r++) fresh.set(old.subarray(r * capacity * hd, (r * capacity + past) * hd), r * next * hd);
          return fresh;
        });
        capacity = next;
      }
      for (let l = 0; l < L; l++) {
        for (const [i, name] of [GraphNames.newKey(l), GraphNames.newValue(l)].entries()) {
          const src = out[name]!.data;
          const dst = buffers[2 * l + i]!;
          for (let r = 0; r < rows; r++) dst.set(src.subarray(r * n * hd, (r + 1) * n * hd), (r * capacity + past) * hd);
        }
      }
    } else {
      const next: Feeds = {};
      for (let l = 0; l < L; l++) {
        next[GraphNames.pastKey(l)] = f32(out[GraphNames.presentKey(l)]!.data, [B, KV, Tk, hd]);
        next[GraphNames.pastValue(l)] = f32(out[GraphNames.presentValue(l)]!.data, [B, KV, Tk, hd]);
      }
      cache = next;
    }
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
