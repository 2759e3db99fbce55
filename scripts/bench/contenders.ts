/**
 * What the benchmarks compare, set up once per run: the ORT engine on 1 and 2 intra-op threads (optionally also
 * with spinning off), the TensorFlow.js engine on its best backend here, and the PyTorch peer on 1 and 2 threads.
 * Also the shared model configuration, the statistics and the table printing of bench:train and bench:sample.
 */
import { loadavg } from "node:os";
import { initTfBackend, getTf, type TfBackendName } from "../../src/core/engine/tf/tfBackend";
import { TfEngine } from "../../src/core/engine/tf/tfEngine";
import { OrtEngine } from "../../src/core/engine/ort/ortEngine";
import type { ComputeEngine } from "../../src/core/engine/computeEngine";
import { parameterCount } from "../../src/core/model/architecture";
import { tinyConfig, type ModelConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { TorchPeer, peerUnavailable } from "./torchPeer";

/** Options both benchmarks take (parseArgs declarations). */
export const COMMON_OPTIONS = {
  hidden: { type: "string", default: "128" },
  layers: { type: "string", default: "4" },
  vocab: { type: "string", default: "512" },
  python: { type: "string", default: "/usr/bin/python3" },
  "tf-backend": { type: "string", default: "wasm" },
  "tf-threads": { type: "string", default: "" },
  spin: { type: "string", default: "on" },
  gap: { type: "string", default: "50" },
} as const;

export interface CommonValues {
  hidden: string;
  layers: string;
  vocab: string;
  python: string;
  "tf-backend": string;
  "tf-threads": string;
  spin: string;
  gap: string;
}

/** The 0.80M model at the defaults: hidden 128, 4 layers, 4 heads / 2 kv, vocab 512, SwiGLU 352. */
export function benchConfig(v: CommonValues): ModelConfig {
  const D = Number(v.hidden);
  return tinyConfig(Number(v.vocab), { hidden_size: D, intermediate_size: Math.round((D * 11) / 4 / 8) * 8, num_hidden_layers: Number(v.layers), num_attention_heads: D / 32, num_key_value_heads: Math.max(1, D / 64) });
}

export function describeModel(c: ModelConfig): string {
  return `Llama-style, ${(parameterCount(c) / 1e6).toFixed(2)}M parameters (hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads / ${c.num_key_value_heads} kv, SwiGLU ${c.intermediate_size}, vocab ${c.vocab_size})`;
}

export type Family = "ort" | "tfjs" | "torch";

export interface Contender {
  label: string;
  family: Family;
  threads: number;
  engine?: ComputeEngine;
  peer?: TorchPeer;
}

const plural = (n: number): string => `${n} thread${n === 1 ? "" : "s"}`;

/**
 * Every contender, ready to run: ORT (1 and 2 threads; with --spin both also 2 threads without spinning),
 * TensorFlow.js, PyTorch 1 and 2 threads. A missing PyTorch is a printed note, not an error.
 */
export async function startContenders(config: ModelConfig, v: CommonValues): Promise<{ contenders: Contender[]; notes: string[] }> {
  const weights = initWeights(config, 0);
  const notes: string[] = [];
  const contenders: Contender[] = [];
  if (!["on", "off", "both"].includes(v.spin)) throw new Error(`--spin must be on, off or both, not ${v.spin}`);
  const spins = v.spin === "both" ? [true, false] : [v.spin === "on"];
  for (const threads of [1, 2]) {
    // One thread has no pool to spin: only the 2-thread engine differs between spin settings.
    for (const spin of threads === 1 ? [spins[0] as boolean] : spins) {
      const engine = new OrtEngine(config, weights, spin ? { threads } : { threads, spin: false });
      const suffix = threads > 1 && (v.spin === "both" || !spin) ? (spin ? ", spin" : ", no spin") : "";
      contenders.push({ label: `ORT ${plural(threads)}${suffix}`, family: "ort", threads, engine });
    }
  }
  const tfThreads = v["tf-threads"] ? Number(v["tf-threads"]) : undefined;
  const choice = await initTfBackend({ force: v["tf-backend"] as TfBackendName, ...(tfThreads ? { threads: tfThreads } : {}) });
  const tfEngine = new TfEngine(getTf(), config, weights, choice.detail);
  contenders.push({ label: `TF.js ${choice.detail}`, family: "tfjs", threads: Number(/(\d+) threads?/.exec(choice.detail)?.[1] ?? 1), engine: tfEngine });
  const missing = peerUnavailable(v.python);
  if (missing) notes.push(missing);
  else {
    const peers: Contender[] = [];
    try {
      for (const threads of [1, 2]) {
        const peer = await TorchPeer.start(v.python, config, threads);
        peers.push({ label: `PyTorch ${peer.version} ${plural(threads)}`, family: "torch", threads, peer });
      }
      contenders.push(...peers);
    } catch (e) {
      stopContenders(peers);
      notes.push(`PyTorch peer: not available (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return { contenders, notes };
}

export function stopContenders(contenders: readonly Contender[]): void {
  for (const c of contenders) {
    c.engine?.dispose();
    c.peer?.close();
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
