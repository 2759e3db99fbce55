/**
 * A benchmark contender as a child process that answers timing commands, one JSON line in and one out: our
 * engines through benchChild.ts, the PyTorch peer through peer_train.py --serve (same protocol). Each contender
 * has a process of its own so that the peak memory it reports (the child's own VmHWM) is its alone, and the
 * parent asks it for steps round by round so that machine noise hits every contender alike. Times are measured
 * inside the child around the work only.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ModelConfig } from "../../src/core/model/config";
import type { ChildSpec } from "./childProtocol";

export type TimedCommand =
  | { op: "sft" | "dpo"; batch: number; length: number; reps: number }
  | { op: "sample"; batch: number; prompt: number; new: number; reps: number; temperature: number };

/**
 * How the PyTorch peer spreads its N threads (contenders.ts runs every one that applies and compares against the
 * fastest): "blas", OpenBLAS's own N pthreads under one torch thread; "torch", N torch threads over a one-thread
 * OpenBLAS (or over the peer's own BLAS, such as the MKL of PyTorch's wheels, which follows torch's threads);
 * "openmp", Debian's libopenblas0-openmp, which runs on torch's OpenMP pool, both at N; "cuda", the GPU.
 */
export type PeerSetup = "blas" | "torch" | "openmp" | "cuda";

/** What a PyTorch interpreter offers, from one short probe: its version and BLAS; or why it cannot run. */
export type PeerProbe = { ok: true; torch: string; blas: string; openblas: boolean } | { ok: false; why: string };

/** The peer's answer to {"op": "info"} (peer_train.py peer_info). */
export interface PeerInfo {
  torch: string;
  threads: number;
  device: string;
  /** threadpoolctl's report of the BLAS and OpenMP libraries in the process (plus OpenBLAS's config string). */
  libraries?: Array<{ internal_api: string; version: string | null; architecture?: string | null; threading_layer?: string | null; num_threads: number; filepath: string; config?: string }>;
  /** torch's BLAS_INFO build setting: "mkl", "open", "generic" (Debian: libblas.so.3, i.e. OpenBLAS). */
  blas_info?: string;
  /** Largest relative error of the peer's float32 matmul products against float64 sums. */
  check_error?: number;
  /** A 1024 × 576 × 1536 float32 matmul on one thread and as the peer runs (only when asked to probe). */
  gflops?: { one_thread: number; as_run: number };
}

const PROBE = [
  "import json, sys, warnings",
  'warnings.filterwarnings("ignore", message="Failed to initialize NumPy")',
  "import torch",
  "torch.ones(8, 8) @ torch.ones(8, 8)",
  'maps = open("/proc/self/maps").read() if sys.platform.startswith("linux") else ""',
  'blas = next((s.split("=")[1] for s in torch.__config__.show().replace(",", " ").split() if s.startswith("BLAS_INFO=")), "?")',
  'if sys.argv[1] == "cuda" and not torch.cuda.is_available(): sys.exit(3)',
  'print(json.dumps({"torch": torch.__version__, "blas": blas, "openblas": "libopenblas" in maps}))',
].join("\n");

/** Probes `python` (a path, or a command on PATH) for torch, and on CUDA for a GPU. */
export function probePeer(python: string, device = "cpu"): PeerProbe {
  if (python.includes("/") && !existsSync(python)) {
    const hint = python.includes(".venv") ? "; `npm run setup:python` creates it" : "";
    return { ok: false, why: `PyTorch peer ${python}: not available (not found${hint})` };
  }
  const r = spawnSync(python, ["-c", PROBE, device], { encoding: "utf8", env: peerEnv() });
  if (r.error) return { ok: false, why: `PyTorch peer ${python}: not available (${r.error.message})` };
  if (r.status === 3) return { ok: false, why: `PyTorch peer ${python} on CUDA: not available (torch.cuda.is_available() is False)` };
  if (r.status !== 0) {
    if (/No module named 'torch'/.test(r.stderr)) return { ok: false, why: `PyTorch peer ${python}: not available (no torch; Debian: apt-get install python3-torch)` };
    return { ok: false, why: `PyTorch peer ${python}: not available (import torch failed: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`})` };
  }
  const got = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { torch: string; blas: string; openblas: boolean };
  return { ok: true, ...got };
}

/** Why the peer cannot run here, in the words the benchmarks print; null when it can. */
export function peerUnavailable(python: string, device = "cpu"): string | null {
  const p = probePeer(python, device);
  return p.ok ? null : p.why;
}

/** Where Debian's libopenblas0-openmp keeps its libopenblas.so.0 and libblas.so.3 (/usr/lib/<triplet>/openblas-openmp), or null. */
export function openmpOpenblasDir(): string | null {
  try {
    for (const d of readdirSync("/usr/lib")) {
      const dir = join("/usr/lib", d, "openblas-openmp");
      if (existsSync(join(dir, "libopenblas.so.0"))) return dir;
    }
  } catch {
    // No /usr/lib: not Debian-like.
  }
  return null;
}

/**
 * The peer's environment: ours without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE. This machine may set those for
 * the engines' tests (Haswell kernels, a fixed L2 size); issue 22 measured them costing OpenBLAS on this AMD EPYC
 * 52 vs 94 GFLOP/s on one core, and no PyTorch user would run so. Only this child's copy changes; the tests and CI
 * keep them. OpenBLAS then detects the core itself (Zen), and the peer checks its products against float64
 * before timing (peer_train.py check_matmul) and reports the kernel it ran (describePeer).
 */
function peerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** The thread variables and library path of one setup at `threads` threads, and what peer_train.py is told. */
function setupOf(setup: PeerSetup, threads: number): { env: NodeJS.ProcessEnv; args: string[] } {
  const n = String(threads);
  switch (setup) {
    case "blas":
      return { env: { OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: "1" }, args: ["--threads", "1", "--blas-threads", n, "--expect-blas", "openblas-pthreads"] };
    case "torch":
    case "cuda":
      // Any OpenBLAS at one thread: its own pthreads on top of torch's threads oversubscribe the cores (measured
      // on 2 cores: 2 torch threads fell from ~12k to ~4-6k tok/s). A peer without OpenBLAS ignores it.
      return { env: { OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: n }, args: ["--threads", n, "--blas-threads", "1"] };
    case "openmp": {
      const dir = openmpOpenblasDir();
      if (!dir) throw new Error("libopenblas0-openmp is not installed (apt-get install libopenblas0-openmp)");
      // The loader finds this directory's libopenblas.so.0 and libblas.so.3 before the system's (pthreads) ones.
      const path = [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
      return { env: { LD_LIBRARY_PATH: path, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n }, args: ["--threads", n, "--blas-threads", n, "--expect-blas", "openblas-openmp"] };
    }
  }
}

/** One line on what a peer ran on: BLAS library, kernel and threads, the float64 check and the matmul GFLOP/s. */
export function describePeer(info: PeerInfo): string {
  const libs = (info.libraries ?? []).map((l) => {
    if (l.internal_api === "openblas") return `OpenBLAS ${l.version ?? ""} ${l.threading_layer ?? ""} build, ${l.architecture ?? "?"} kernel, ${l.num_threads} thread(s) (${l.filepath}; "${l.config ?? ""}")`;
    return `${l.internal_api} ${l.num_threads} thread(s)`;
  });
  const parts = [`torch ${info.torch}, ${info.threads} torch thread(s), BLAS_INFO=${info.blas_info ?? "?"}`, `libraries: ${libs.join(", ") || "none reported (threadpoolctl missing?)"}`];
  if (info.check_error !== undefined) parts.push(`matmul vs float64: rel. error ${info.check_error.toExponential(1)}`);
  if (info.gflops) {
    const { one_thread: one, as_run: run } = info.gflops;
    parts.push(`1024×576×1536 matmul ${one.toFixed(0)} GFLOP/s on 1 thread, ${run.toFixed(0)} as run (${(run / one).toFixed(2)}x)`);
  }
  return parts.join("; ");
}

export class ContenderProcess {
  private readonly pending: Array<{ resolve(line: string): void; reject(e: Error): void }> = [];
  private stderr = "";
  private exited: Error | null = null;
  private readonly exit: Promise<void>;
  /** What the child says it runs: torch.__version__ for the peer, the engine's device for ours. */
  version = "";
  /** The peer's report of its BLAS, check and speed (PyTorch only). */
  peer?: PeerInfo;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on("line", (line) => this.pending.shift()?.resolve(line));
    child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    const fail = (e: Error): void => {
      this.exited = e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    this.exit = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        const why = signal === "SIGKILL" ? "SIGKILL: killed, likely for memory" : (signal ?? `code ${code}`);
        fail(new Error(`contender process exited (${why}): ${this.lastError()}`));
        resolve();
      });
    });
    child.on("error", fail);
  }

  /** The child's error line (Node and Python print the stack around it), else its last line of stderr. */
  private lastError(): string {
    const lines = this.stderr.split("\n").map((l) => l.trim()).filter(Boolean);
    return [...lines].reverse().find((l) => /^(\w+\.)*\w*(Error|Exception)\b/.test(l) || l.startsWith("benchChild:")) ?? lines.at(-1) ?? "";
  }

  /**
   * The PyTorch peer (peer_train.py --serve) on `threads` CPU threads spread as `setup` says, or on CUDA with device
   * "cuda". With `probe` it also measures its matmul GFLOP/s on one thread and as run (into `peer`).
   */
  static async torch(python: string, config: ModelConfig, threads: number, device = "cpu", setup: PeerSetup = device === "cuda" ? "cuda" : "torch", probe = false): Promise<ContenderProcess> {
    const { env, args } = setupOf(setup, threads);
    const child = spawn(python, [join(__dirname, "peer_train.py"), "--serve", "--config", JSON.stringify(config), ...args, "--device", device], { env: peerEnv(env), stdio: ["pipe", "pipe", "pipe"] });
    const p = new ContenderProcess(child);
    const info = JSON.parse(await p.send({ op: "info", probe })) as PeerInfo;
    const want = setup === "blas" ? 1 : threads;
    if (info.threads !== want) throw new Error(`PyTorch peer runs ${info.threads} torch threads, asked for ${want}`);
    p.version = info.torch;
    p.peer = info;
    return p;
  }

  /** One of our engines in benchChild.ts, started with the same TypeScript loader (tsx) as this process. */
  static async ours(spec: ChildSpec): Promise<ContenderProcess> {
    const loader = process.execArgv.length ? process.execArgv : ["--import", "tsx"];
    const child = spawn(process.execPath, [...loader, join(__dirname, "benchChild.ts"), JSON.stringify(spec)], { stdio: ["pipe", "pipe", "pipe"] });
    const p = new ContenderProcess(child);
    const info = JSON.parse(await p.send({ op: "info" })) as { engine: string };
    p.version = info.engine;
    return p;
  }

  private async send(cmd: TimedCommand | { op: "info"; probe?: boolean } | { op: "peak" }): Promise<string> {
    if (this.exited) throw this.exited;
    const line = await new Promise<string>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(JSON.stringify(cmd) + "\n");
    });
    const error = (JSON.parse(line) as { error?: string }).error;
    if (error) throw new Error(`contender process: ${error}`);
    return line;
  }

  /** Seconds of each repetition, timed inside the child. */
  async time(cmd: TimedCommand): Promise<number[]> {
    const out = JSON.parse(await this.send(cmd)) as { seconds?: number[] };
    if (!out.seconds) throw new Error(`contender process answered ${JSON.stringify(out)}`);
    return out.seconds;
  }

  /** The child's peak resident set so far, in bytes (its own VmHWM). */
  async peakBytes(): Promise<number> {
    const out = JSON.parse(await this.send({ op: "peak" })) as { peak_kb: number };
    return out.peak_kb * 1024;
  }

  /** Ends the child and waits until it has exited, so that its memory is free again. */
  async close(): Promise<void> {
    if (!this.exited) this.child.stdin.end();
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 30_000);
    await this.exit;
    clearTimeout(killer);
  }
}
