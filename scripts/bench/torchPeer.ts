/**
 * The PyTorch peer of the benchmarks as a long-lived child process (peer_train.py --serve): one model per
 * thread count, asked for timed steps round by round so that it takes its turn between our engines and machine
 * noise hits every engine alike. Times are measured inside Python around the work only, as ours are.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ModelConfig } from "../../src/core/model/config";

export type PeerCommand =
  | { op: "sft" | "dpo"; batch: number; length: number; reps: number }
  | { op: "sample"; batch: number; prompt: number; new: number; reps: number; temperature: number };

/** Why the peer cannot run here, in the words the benchmarks print; null when it can. */
export function peerUnavailable(python: string): string | null {
  if (!existsSync(python)) return `PyTorch peer: not available (${python} not found)`;
  const r = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (r.status === 0) return null;
  if (/No module named 'torch'/.test(r.stderr)) return "PyTorch peer: not available (python3-torch not installed)";
  return `PyTorch peer: not available (${python} -c "import torch" failed: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`})`;
}

export class TorchPeer {
  private readonly pending: Array<{ resolve(line: string): void; reject(e: Error): void }> = [];
  private stderr = "";
  private exited: Error | null = null;
  /** torch.__version__ of the peer. */
  version = "";

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly threads: number,
  ) {
    createInterface({ input: child.stdout }).on("line", (line) => this.pending.shift()?.resolve(line));
    child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    const fail = (e: Error): void => {
      this.exited = e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    child.on("exit", (code, signal) => fail(new Error(`PyTorch peer exited (${signal ?? `code ${code}`}): ${this.stderr.trim().split("\n").pop() ?? ""}`)));
    child.on("error", fail);
  }

  static async start(python: string, config: ModelConfig, threads: number): Promise<TorchPeer> {
    const child = spawn(python, [join(__dirname, "peer_train.py"), "--serve", "--config", JSON.stringify(config), "--threads", String(threads)], {
      // OpenBLAS's own pthreads on top of torch's threads oversubscribe 2 cores (measured: 2 torch threads fell
      // from ~12k to ~4-6k tok/s); one BLAS thread inside torch's threads is PyTorch at its best here.
      env: { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: String(threads) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const peer = new TorchPeer(child, threads);
    const info = JSON.parse(await peer.send({ op: "info" })) as { torch: string; threads: number };
    if (info.threads !== threads) throw new Error(`PyTorch peer runs ${info.threads} threads, asked for ${threads}`);
    peer.version = info.torch;
    return peer;
  }

  private send(cmd: PeerCommand | { op: "info" }): Promise<string> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(JSON.stringify(cmd) + "\n");
    });
  }

  /** Seconds of each repetition, timed inside the peer. */
  async time(cmd: PeerCommand): Promise<number[]> {
    const out = JSON.parse(await this.send(cmd)) as { seconds?: number[] };
    if (!out.seconds) throw new Error(`PyTorch peer answered ${JSON.stringify(out)}`);
    return out.seconds;
  }

  close(): void {
    this.child.stdin.end();
  }
}
