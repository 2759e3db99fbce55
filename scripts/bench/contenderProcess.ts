/**
 * A benchmark contender as a child process that answers timing commands, one JSON line in and one out: our
 * engines through benchChild.ts, the PyTorch peer through peer_train.py --serve (same protocol). Each contender
 * has a process of its own so that the peak memory it reports (the child's own VmHWM) is its alone, and the
 * parent asks it for steps round by round so that machine noise hits every contender alike. Times are measured
 * inside the child around the work only.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ModelConfig } from "../../src/core/model/config";
import type { ChildSpec } from "./childProtocol";

export type TimedCommand =
  | { op: "sft" | "dpo"; batch: number; length: number; reps: number }
  | { op: "sample"; batch: number; prompt: number; new: number; reps: number; temperature: number };

/** Why the peer cannot run here, in the words the benchmarks print; null when it can. */
export function peerUnavailable(python: string, device = "cpu"): string | null {
  if (python.includes("/") && !existsSync(python)) return `PyTorch peer: not available (${python} not found)`;
  const probe = device === "cuda" ? "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" : "import torch";
  const r = spawnSync(python, ["-c", probe], { encoding: "utf8" });
  if (r.error) return `PyTorch peer: not available (${python}: ${r.error.message})`;
  if (r.status === 0) return null;
  if (r.status === 3) return "PyTorch peer on CUDA: not available (torch.cuda.is_available() is False)";
  if (/No module named 'torch'/.test(r.stderr)) return "PyTorch peer: not available (python3-torch not installed)";
  return `PyTorch peer: not available (${python} -c "import torch" failed: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`})`;
}

export class ContenderProcess {
  private readonly pending: Array<{ resolve(line: string): void; reject(e: Error): void }> = [];
  private stderr = "";
  private exited: Error | null = null;
  private readonly exit: Promise<void>;
  /** What the child says it runs: torch.__version__ for the peer, the engine's device for ours. */
  version = "";

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

  /** The PyTorch peer (peer_train.py --serve) on `threads` CPU threads, or on CUDA with device "cuda". */
  static async torch(python: string, config: ModelConfig, threads: number, device = "cpu"): Promise<ContenderProcess> {
    const child = spawn(python, [join(__dirname, "peer_train.py"), "--serve", "--config", JSON.stringify(config), "--threads", String(threads), "--device", device], {
      // OpenBLAS's own pthreads on top of torch's threads oversubscribe 2 cores (measured: 2 torch threads fell
      // from ~12k to ~4-6k tok/s); one BLAS thread inside torch's threads is PyTorch at its best here.
      env: { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: String(threads) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const p = new ContenderProcess(child);
    const info = JSON.parse(await p.send({ op: "info" })) as { torch: string; threads: number };
    if (info.threads !== threads) throw new Error(`PyTorch peer runs ${info.threads} threads, asked for ${threads}`);
    p.version = info.torch;
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

  private async send(cmd: TimedCommand | { op: "info" | "peak" }): Promise<string> {
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
