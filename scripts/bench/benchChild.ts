/**
 * One of our engines in a process of its own, for the benchmarks (contenders.ts starts it): the peak memory a
 * contender reports is then its own and nobody else's. It speaks peer_train.py --serve's protocol, one JSON
 * line in and one out, so the parent times our engines and the PyTorch peer alike:
 *
 *   {"op": "info"}                                                 -> {"engine": device, "threads": n}
 *   {"op": "sft" | "dpo", "batch": B, "length": T, "reps": n}      -> {"seconds": [n step times]}
 *   {"op": "sample", "batch": B, "prompt": P, "new": N, "reps": n, "temperature": t} -> {"seconds": [...]}
 *   {"op": "peak"}                                                 -> {"peak_kb": VmHWM of this process}
 *
 * argv[2]: JSON of ChildSpec. Times cover the work only, not the pipe. Random data as in the peer: tokens drawn
 * uniformly from [3, vocab), the first quarter of each training row is prompt (loss mask 0); DPO's first half of
 * the rows are chosen, the second rejected, with zero reference log-probabilities.
 */
import { createInterface } from "node:readline";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type TokenBatch } from "../../src/core/engine/computeEngine";
import { OrtEngine } from "../../src/core/engine/ort/runtime/ortEngine";
import type { ModelConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { sampleToken } from "../../src/core/sample/tokenChoice";
import { makeBatch } from "../../src/core/train/batching";
import { Rng } from "../../src/core/util/rng";
import { peakRssKb, type ChildSpec } from "./childProtocol";

interface Batches {
  all: TokenBatch;
  chosen: TokenBatch;
  rejected: TokenBatch;
  zeros: Float32Array;
}

async function openEngine(spec: ChildSpec, config: ModelConfig): Promise<ComputeEngine> {
  const weights = initWeights(config, 0);
  if (spec.family === "ort") {
    const ep = spec.executionProvider ?? "cpu";
    // The weights are the engine's (adopted, not copied), as the round hands its checkpoints over.
    return new OrtEngine(config, weights, spec.spin === false ? { threads: spec.threads, spin: false, executionProvider: ep } : { threads: spec.threads, executionProvider: ep }, { adoptWeights: true });
  }
  // Loaded only here, so that an ORT-only machine (scripts/gpu/device-bench.sh) needs no TensorFlow.js.
  const { initTfBackend, getTf } = await import("../../src/core/engine/tf/tfBackend");
  const { TfEngine } = await import("../../src/core/engine/tf/tfEngine");
  const choice = await initTfBackend({ force: (spec.tfBackend ?? "wasm") as never, ...(spec.tfThreads ? { threads: spec.tfThreads } : {}) });
  return new TfEngine(getTf(), config, weights, choice.detail);
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as ChildSpec;
  const config = spec.config;
  const V = config.vocab_size;
  const engine = await openEngine(spec, config);
  const batchCache = new Map<string, Batches>();
  const rng = new Rng(7);

  const batches = (B: number, T: number): Batches => {
    const key = `${B}x${T}`;
    let b = batchCache.get(key);
    if (!b) {
      const r = new Rng(1);
      const seqs = Array.from({ length: B }, () => ({ ids: Array.from({ length: T + 1 }, () => r.int(3, V - 1)), promptLength: T / 4 }));
      b = { all: makeBatch(seqs, config.pad_token_id, T), chosen: makeBatch(seqs.slice(0, B / 2), config.pad_token_id, T), rejected: makeBatch(seqs.slice(B / 2), config.pad_token_id, T), zeros: new Float32Array(B / 2) };
      batchCache.set(key, b);
    }
    return b;
  };

  // One training step: the backward pass, then the optimiser step.
  const trainStep = async (kind: "sft" | "dpo", b: Batches): Promise<void> => {
    if (kind === "sft") await engine.sftBackward(b.all, 1);
    else await engine.dpoBackward(b.chosen, b.rejected, b.zeros, b.zeros, 0.1, 1);
    await engine.optimizerStep(1e-4, DEFAULT_OPTIMIZER);
  };

  // One generation: the prompt pass plus new − 1 cached steps, one temperature draw per row from the logits.
  const generate = async (B: number, P: number, N: number, temperature: number): Promise<void> => {
    const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(3, V - 1)));
    let { session, logits } = await engine.startDecoding(prompts, N);
    for (let s = 0; s < N; s++) {
      const next = prompts.map((_, i) => sampleToken(logits.subarray(i * V, (i + 1) * V), temperature, 1, 0, rng));
      if (s < N - 1) logits = await session.step(next);
    }
    session.dispose();
  };

  const answer = async (cmd: Record<string, unknown>): Promise<unknown> => {
    const op = cmd.op;
    if (op === "info") return { engine: engine.device, threads: spec.threads };
    if (op === "peak") return { peak_kb: peakRssKb() };
    const reps = Number(cmd.reps ?? 1);
    const seconds: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      if (op === "sft" || op === "dpo") await trainStep(op, batches(Number(cmd.batch), Number(cmd.length)));
      else if (op === "sample") await generate(Number(cmd.batch), Number(cmd.prompt), Number(cmd.new), Number(cmd.temperature ?? 1));
      else throw new Error(`unknown op ${String(op)}`);
      seconds.push((performance.now() - t0) / 1000);
    }
    return { seconds };
  };

  // Commands are answered one at a time, in order (the parent waits for each answer anyway).
  let queue = Promise.resolve();
  createInterface({ input: process.stdin })
    .on("line", (line) => {
      if (!line.trim()) return;
      queue = queue.then(async () => {
        let out: unknown;
        try {
          out = await answer(JSON.parse(line) as Record<string, unknown>);
        } catch (e) {
          out = { error: e instanceof Error ? e.message : String(e) };
        }
        process.stdout.write(JSON.stringify(out) + "\n");
      });
    })
    .on("close", () => {
      void queue.then(() => {
        engine.dispose();
        process.exit(0);
      });
    });
}

main().catch((e: unknown) => {
  process.stderr.write(`benchChild: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
