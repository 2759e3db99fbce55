/**
 * What the benchmarks compare, each in a child process of its own (contenderProcess.ts): the ORT engine on 1 and
 * 2 intra-op threads (optionally also with spinning off), the TensorFlow.js engine on its best backend here, and
 * the PyTorch peer on 1 and 2 threads. Also the model presets, the statistics and the table printing of
 * bench:train and bench:sample.
 *
 * The peer is made as fast as this machine lets it be (issue 22): both PyTorch builds present (--python: Debian's
 * python3-torch 1.13 on OpenBLAS, and PyTorch 2.x on MKL in .venv from `npm run setup:python`), each in every
 * thread setup that applies (contenderProcess.ts PeerSetup: OpenBLAS threads, torch threads, OpenBLAS on torch's
 * OpenMP pool), and every ratio is against the fastest of them at the same thread count for that measure.
 *
 * Process lifetime (--lifetime): "run" keeps every contender's process for the whole run (cheap at the tiny
 * default); "turn" starts it for each of its turns and ends it before the next contender starts, so that only
 * one model is in memory at a time (the 135M preset: an ORT process peaks at ~12.7 GB, PyTorch at ~6 GB, on a
 * machine with less than all of them together). "auto": "turn" above 50M parameters.
 */
import { loadavg } from "node:os";
import { isAbsolute, join } from "node:path";
import { parameterCount } from "../../src/core/model/architecture";
import { tinyConfig, type ModelConfig } from "../../src/core/model/config";
import type { ChildSpec } from "./childProtocol";
import { ContenderProcess, describePeer, openmpOpenblasDir, probePeer, type PeerSetup } from "./contenderProcess";

/** Options both benchmarks take (parseArgs declarations). Size options left empty take the preset's value. */
export const COMMON_OPTIONS = {
  preset: { type: "string", default: "tiny" },
  hidden: { type: "string", default: "" },
  layers: { type: "string", default: "" },
  vocab: { type: "string", default: "" },
  python: { type: "string", default: "/usr/bin/python3,.venv/bin/python" },
  "peer-setups": { type: "string", default: "blas,torch,openmp" },
  "peer-device": { type: "string", default: "cpu" },
  "tf-backend": { type: "string", default: "wasm" },
  "tf-threads": { type: "string", default: "" },
  tfjs: { type: "string", default: "" },
  threads: { type: "string", default: "1,2" },
  ep: { type: "string", default: "cpu" },
  spin: { type: "string", default: "on" },
  gap: { type: "string", default: "50" },
  lifetime: { type: "string", default: "auto" },
} as const;

export interface CommonValues {
  preset: string;
  hidden: string;
  layers: string;
  vocab: string;
  python: string;
  "peer-setups": string;
  "peer-device": string;
  "tf-backend": string;
  "tf-threads": string;
  tfjs: string;
  threads: string;
  ep: string;
  spin: string;
  gap: string;
  lifetime: string;
}

export const PRESETS = ["tiny", "smollm2-135m"] as const;
export type Preset = (typeof PRESETS)[number];

export function presetOf(v: CommonValues): Preset {
  if (!(PRESETS as readonly string[]).includes(v.preset)) throw new Error(`--preset must be one of ${PRESETS.join(", ")}, not ${v.preset}`);
  return v.preset as Preset;
}

/**
 * tiny (the default): 0.80M parameters, hidden 128, 4 layers, 4 heads / 2 kv, vocab 512, SwiGLU 352; --hidden,
 * --layers and --vocab scale it. smollm2-135m: SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads / 3 kv,
 * head 64, SwiGLU 1536, vocab 49,152, tied embeddings, RoPE θ 100,000), with 256 positions (enough for the
 * benchmarks' 128-token rows and 32 + new-token generations).
 */
export function benchConfig(v: CommonValues): ModelConfig {
  if (presetOf(v) === "smollm2-135m") {
    if (v.hidden || v.layers || v.vocab) throw new Error("--hidden, --layers and --vocab do not combine with --preset smollm2-135m");
    return tinyConfig(49152, { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, head_dim: 64, max_position_embeddings: 256, rope_theta: 100000, tie_word_embeddings: true });
  }
  const D = Number(v.hidden || 128);
  return tinyConfig(Number(v.vocab || 512), { hidden_size: D, intermediate_size: Math.round((D * 11) / 4 / 8) * 8, num_hidden_layers: Number(v.layers || 4), num_attention_heads: D / 32, num_key_value_heads: Math.max(1, D / 64) });
}

export function describeModel(c: ModelConfig): string {
  return `Llama-style, ${(parameterCount(c) / 1e6).toFixed(2)}M parameters (hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads / ${c.num_key_value_heads} kv, SwiGLU ${c.intermediate_size}, vocab ${c.vocab_size})`;
}

export type Family = "ort" | "tfjs" | "torch";

/** A contender: how to start its process, and the process while it runs. */
export interface Contender {
  label: string;
  family: Family;
  threads: number;
  open(): Promise<ContenderProcess>;
  proc?: ContenderProcess;
  /** PyTorch only: what its first process reported on its BLAS, the float64 check and matmul GFLOP/s. */
  about?: string;
}

const plural = (n: number): string => `${n} thread${n === 1 ? "" : "s"}`;

export interface Lineup {
  contenders: Contender[];
  notes: string[];
  /** "turn": each contender's process lives for one turn only (see the file comment). */
  lifetime: "run" | "turn";
}

/**
 * Every contender, not yet started: ORT (--threads, 1 and 2 by default; with --spin both also 2 threads without
 * spinning), TensorFlow.js (unless --tfjs off; off by default at the 135M preset, where TF.js on WebAssembly
 * takes minutes a step), PyTorch at the same thread counts (or once on CUDA with --peer-device cuda). A missing
 * PyTorch is a printed note, not an error.
 */
export function lineup(config: ModelConfig, v: CommonValues): Lineup {
  const notes: string[] = [];
  const contenders: Contender[] = [];
  const preset = presetOf(v);
  if (!["on", "off", "both"].includes(v.spin)) throw new Error(`--spin must be on, off or both, not ${v.spin}`);
  if (!["auto", "run", "turn"].includes(v.lifetime)) throw new Error(`--lifetime must be auto, run or turn, not ${v.lifetime}`);
  const ep = v.ep as NonNullable<ChildSpec["executionProvider"]>;
  if (!["cpu", "webgpu", "cuda"].includes(ep)) throw new Error(`--ep must be cpu, webgpu or cuda, not ${v.ep}`);
  const threadCounts = v.threads.split(",").map(Number);
  const spins = v.spin === "both" ? [true, false] : [v.spin === "on"];
  for (const threads of threadCounts) {
    // One thread has no pool to spin: only the multi-thread engines differ between spin settings.
    for (const spin of threads === 1 ? [spins[0] as boolean] : spins) {
      const suffix = threads > 1 && (v.spin === "both" || !spin) ? (spin ? ", spin" : ", no spin") : "";
      const spec: ChildSpec = { family: "ort", config, threads, executionProvider: ep, ...(spin ? {} : { spin: false }) };
      contenders.push({ label: `ORT ${ep === "cpu" ? "" : `${ep} `}${plural(threads)}${suffix}`, family: "ort", threads, open: () => ContenderProcess.ours(spec) });
    }
  }
  const tfjs = v.tfjs || (preset === "smollm2-135m" ? "off" : "on");
  if (tfjs === "on") {
    const spec: ChildSpec = { family: "tfjs", config, threads: 1, tfBackend: v["tf-backend"], ...(v["tf-threads"] ? { tfThreads: Number(v["tf-threads"]) } : {}) };
    const c: Contender = { label: `TF.js ${v["tf-backend"]}`, family: "tfjs", threads: 1, open: () => ContenderProcess.ours(spec) };
    c.open = async () => {
      const p = await ContenderProcess.ours(spec);
      // The child names its backend and thread count ("wasm (2 threads)"); ratios pair by family, not threads.
      c.label = `TF.js ${p.version}`;
      c.threads = Number(/(\d+) threads?/.exec(p.version)?.[1] ?? 1);
      return p;
    };
    contenders.push(c);
  } else if (!v.tfjs) notes.push("TF.js: left out at this preset (on WebAssembly a 135M step takes minutes); --tfjs on adds it");
  contenders.push(...peers(config, v, threadCounts, notes));
  const lifetime = v.lifetime === "auto" ? (parameterCount(config) > 50e6 ? "turn" : "run") : (v.lifetime as "run" | "turn");
  return { contenders, notes, lifetime };
}

const repoRoot = join(__dirname, "..", "..");

/**
 * The PyTorch contenders: for every interpreter in --python (relative paths from the repository root) that has
 * torch, each thread setup that applies at each thread count (a missing interpreter or library is a note):
 *   1 thread: one (torch 1, BLAS 1; the setups differ in how they share threads only);
 *   N > 1 on OpenBLAS: "blas" (OpenBLAS N, torch 1), "torch" (torch N, OpenBLAS 1), "openmp" (Debian's OpenMP
 *     OpenBLAS on torch's pool, both N);
 *   N > 1 on another BLAS (the MKL of PyTorch's wheels, which follows torch's threads): "torch" only.
 * --peer-setups leaves setups out (the 1-thread one stays). On CUDA, one contender per interpreter.
 */
function peers(config: ModelConfig, v: CommonValues, threadCounts: readonly number[], notes: string[]): Contender[] {
  const device = v["peer-device"];
  const wanted = v["peer-setups"].split(",").filter(Boolean);
  for (const w of wanted) if (!["blas", "torch", "openmp"].includes(w)) throw new Error(`--peer-setups takes blas, torch and openmp, not ${w}`);
  const out: Contender[] = [];
  for (const given of v.python.split(",").filter(Boolean)) {
    const python = given.includes("/") && !isAbsolute(given) ? join(repoRoot, given) : given;
    const probe = probePeer(python, device);
    if (!probe.ok) {
      notes.push(probe.why);
      continue;
    }
    const blas = probe.openblas ? "OpenBLAS" : probe.blas.toUpperCase();
    const add = (threads: number, setup: PeerSetup, how: string): void => {
      const c: Contender = {
        label: `PyTorch ${probe.torch} ${device === "cuda" ? "CUDA" : `${plural(threads)} (${how})`}`,
        family: "torch",
        threads,
        open: async () => {
          // The matmul GFLOP/s are measured once per contender, in its first process.
          const p = await ContenderProcess.torch(python, config, threads, device, setup, !c.about);
          if (p.peer && !c.about) c.about = `${c.label}: ${describePeer(p.peer)}`;
          return p;
        },
      };
      out.push(c);
    };
    if (device === "cuda") {
      add(1, "cuda", "CUDA");
      continue;
    }
    for (const n of threadCounts) {
      if (n === 1) add(1, "torch", blas);
      else if (!probe.openblas) add(n, "torch", `torch ${n}, ${blas} following`);
      else {
        if (wanted.includes("blas")) add(n, "blas", `OpenBLAS pthreads ${n}, torch 1`);
        if (wanted.includes("torch")) add(n, "torch", `torch ${n}, OpenBLAS 1`);
        if (wanted.includes("openmp")) {
          if (openmpOpenblasDir()) add(n, "openmp", `OpenBLAS-OpenMP on torch's pool, both ${n}`);
          else if (n === threadCounts.find((x) => x > 1)) notes.push(`PyTorch ${probe.torch}: OpenBLAS-on-OpenMP setup left out (apt-get install libopenblas0-openmp)`);
        }
      }
    }
  }
  if (!out.length) notes.push("PyTorch peer: none available, ratios against PyTorch not judged");
  return out;
}

/**
 * The fair PyTorch peer of `c` for one measure: of the PyTorch contenders at c's thread count, the one fastest by
 * `rate` (a rate per contender; NaN where it has none). Undefined when there is no PyTorch at that count; the
 * first one when none has a rate (its ratios print as missing).
 */
export function fastestPeer(contenders: readonly Contender[], c: Contender, rate: (p: Contender) => number): Contender | undefined {
  const same = contenders.filter((p) => p.family === "torch" && p.threads === c.threads);
  let best: Contender | undefined;
  for (const p of same) if (!best || rate(p) > rate(best) || (Number.isNaN(rate(best)) && !Number.isNaN(rate(p)))) best = p;
  return best;
}

/** The peers' reports, one line each (contenders started at least once). */
export function peerReports(contenders: readonly Contender[]): string[] {
  return contenders.flatMap((c) => (c.about ? [c.about] : []));
}

/**
 * Issue 22's verdict on a set of ratios: "target met" when every one reaches the target, else "floor met" when
 * every one reaches the floor, else "missed" (a missing ratio misses). `higher`: speed (≥); else memory (≤).
 */
export function judge(got: readonly number[], target: number, floor: number, higher: boolean): string {
  const reaches = (bound: number): boolean => got.length > 0 && got.every((x) => Number.isFinite(x) && (higher ? x >= bound : x <= bound));
  return reaches(target) ? "target met" : reaches(floor) ? "floor met" : "missed";
}

/** Starts every contender's process (lifetime "run"); one that fails to start is left out with a note. */
export async function startAll(l: Lineup): Promise<void> {
  for (const c of [...l.contenders]) {
    try {
      c.proc = await c.open();
    } catch (e) {
      l.notes.push(`${c.label}: not available (${e instanceof Error ? e.message : String(e)})`);
      l.contenders.splice(l.contenders.indexOf(c), 1);
    }
  }
}

export async function stopAll(contenders: readonly Contender[]): Promise<void> {
  for (const c of contenders) {
    await c.proc?.close();
    delete c.proc;
  }
}

/** The contenders in a different order each round, so none always follows the same neighbour. */
export function rotated<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function fmtRate(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : "";
}

export function fmtBytes(x: number): string {
  return x >= 1 << 30 ? `${(x / 2 ** 30).toFixed(2)} GiB` : `${Math.round(x / 2 ** 20)} MiB`;
}

export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

export function loadLine(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(", ");
}

export const metOrMissed = (ok: boolean): string => (ok ? "met" : "missed");
