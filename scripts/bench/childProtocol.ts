/**
 * What the benchmarks' parent tells a contender process (benchChild.ts) to open, and how a process reads its own
 * peak memory. Kept apart from benchChild.ts so that the parent never loads an engine.
 */
import { readFileSync } from "node:fs";
import type { ModelConfig } from "../../src/core/model/config";

export interface ChildSpec {
  family: "ort" | "tfjs";
  config: ModelConfig;
  threads: number;
  /** ORT only: false turns spinning of idle intra-op threads off. */
  spin?: boolean;
  /** ORT only; "cpu" when absent. */
  executionProvider?: "cpu" | "webgpu" | "cuda";
  /** TF.js only. */
  tfBackend?: string;
  tfThreads?: number;
}

/**
 * Peak resident set of this process in KiB: Linux's VmHWM, the same figure peer_train.py reads for the PyTorch
 * peer; elsewhere process.resourceUsage().maxRSS (also KiB).
 */
export function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]);
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS;
}
