import { Rng } from "../util/rng";
import { makeBatch } from "./batching";
import { cosineWithWarmup, warmupSteps } from "./schedule";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type DpoMetrics, type OptimizerSettings, type TokenBatch } from "../engine/computeEngine";
import type { EncodedSequence } from "../model/promptFormat";
import { CancelledError } from "../util/cancel";
import { yieldNow } from "../util/yieldNow";

export interface TrainSettings {
  /** Optimiser steps. */
  steps: number;
  /** Sequences (or pairs) per optimiser step. */
  batchSize: number;
  /** Sequences (or pairs) per forward/backward pass; gradients accumulate up to batchSize. */
  microBatchSize: number;
  learningRate: number;
  warmupRatio: number;
  maxLength: number;
  seed: number;
  optimizer?: OptimizerSettings;
}

/** One optimiser step's record, with TRL's metric names. */
export interface StepLog {
  step: number;
  totalSteps: number;
  loss: number;
  learning_rate: number;
  grad_norm: number;
  /** Completion tokens trained on in this step (both sides of each pair for DPO). */
  tokens: number;
  tokensPerSecond: number;
  elapsedMs: number;
  dpo?: Omit<DpoMetrics, "loss">;
}

export interface TrainCallbacks {
  onStep?: (log: StepLog) => void;
  /** Checked between micro-batches; true stops training with CancelledError. */
  shouldStop?: () => boolean;
}

/** Draws batches of indices epoch by epoch in a seeded order, so a run is repeatable. */
class BatchOrder {
  private order: number[] = [];
  private pos = 0;
  private readonly rng: Rng;
  constructor(private readonly n: number, seed: number) {
    if (n === 0) throw new Error("nothing to train on");
    this.rng = new Rng(seed);
  }
  next(k: number): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.pos >= this.order.length) {
        this.order = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
        this.pos = 0;
      }
      out.push(this.order[this.pos++] as number);
    }
    return out;
  }
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function checkFinite(value: number, what: string, step: number): void {
  if (!Number.isFinite(value)) throw new Error(`${what} is ${value} at step ${step + 1}: training stopped, the last good checkpoint is kept`);
}

/** What one micro-batch's forward/backward reports: its metrics (averaged by weight) and tokens seen. */
interface MicroResult<M extends { loss: number }> {
  metrics: M;
  tokens: number;
}

/**
 * The loop both trainers share: seeded batches, gradient accumulation over micro-batches (each weighted by
 * its share of the batch), cancel between micro-batches, a NaN/inf check, the schedule and the optimiser step.
 */
async function trainLoop<M extends { loss: number }>(
  engine: ComputeEngine,
  size: number,
  s: TrainSettings,
  cb: TrainCallbacks,
  what: string,
  micro: (rows: number[], weight: number) => Promise<MicroResult<M>>,
  toLog: (mean: M) => Pick<StepLog, "loss" | "dpo">,
): Promise<StepLog[]> {
  const order = new BatchOrder(size, s.seed);
  const warm = warmupSteps(s.steps, s.warmupRatio);
  const logs: StepLog[] = [];
  const started = Date.now();
  engine.resetOptimizer();
  for (let step = 0; step < s.steps; step++) {
    const t0 = Date.now();
    const rows = order.next(s.batchSize);
    let mean: M | null = null;
    let tokens = 0;
    for (const part of chunks(rows, s.microBatchSize)) {
      await yieldNow();
      if (cb.shouldStop?.()) throw new CancelledError();
      const weight = part.length / rows.length;
      const r = await micro(part, weight);
      checkFinite(r.metrics.loss, what, step);
      const acc: Record<string, number> = mean ?? (Object.fromEntries(Object.keys(r.metrics).map((k) => [k, 0])) as Record<string, number>);
      for (const [k, v] of Object.entries(r.metrics) as Array<[string, number]>) acc[k] = (acc[k] as number) + v * weight;
      mean = acc as M;
      tokens += r.tokens;
    }
    const lr = cosineWithWarmup(step, s.steps, warm, s.learningRate);
    const { gradNorm } = await engine.optimizerStep(lr, s.optimizer ?? DEFAULT_OPTIMIZER);
    const ms = Date.now() - t0;
    const log: StepLog = { step: step + 1, totalSteps: s.steps, ...toLog(mean as M), learning_rate: lr, grad_norm: gradNorm, tokens, tokensPerSecond: (tokens * 1000) / Math.max(1, ms), elapsedMs: Date.now() - started };
    logs.push(log);
    cb.onStep?.(log);
  }
  return logs;
}

/** Supervised fine-tuning: cross-entropy on the completion tokens of each sequence. */
export function trainSft(engine: ComputeEngine, data: readonly EncodedSequence[], s: TrainSettings, cb: TrainCallbacks = {}): Promise<StepLog[]> {
  return trainLoop(
    engine,
    data.length,
    s,
    cb,
    "SFT loss",
    async (rows, weight) => {
      const batch = makeBatch(rows.map((i) => data[i] as EncodedSequence), engine.config.pad_token_id, s.maxLength);
      return { metrics: await engine.sftBackward(batch, weight), tokens: batch.tokens };
    },
    (mean) => ({ loss: mean.loss }),
  );
}

export interface PreferencePairTokens {
  chosen: EncodedSequence;
  rejected: EncodedSequence;
}

export interface ReferenceLogProbs {
  chosen: Float32Array;
  rejected: Float32Array;
}

/**
 * The rows (sorted) that `steps` batches of `batchSize` drawn as the training loop draws them (BatchOrder, same
 * seed) visit: all of them once the steps cover an epoch, a subset when there are more pairs than the steps use.
 */
export function visitedRows(n: number, s: Pick<TrainSettings, "steps" | "batchSize" | "seed">): number[] {
  if (s.steps * s.batchSize >= n) return Array.from({ length: n }, (_, i) => i);
  const order = new BatchOrder(n, s.seed);
  const seen = new Set<number>();
  for (let step = 0; step < s.steps; step++) for (const i of order.next(s.batchSize)) seen.add(i);
  return [...seen].sort((a, b) => a - b);
}

/**
 * Log-probabilities of the chosen and rejected completions under the (frozen) reference, once per round: of the
 * pairs in `rows` (default all; trainDpo's visitedRows when the steps use fewer pairs than there are: a forward
 * pass over a pair no step draws is wasted). A pair not computed holds NaN, so reading it stops training with the
 * loss named instead of training on a made-up value. Each micro-batch holds sequences of similar length (sorted),
 * so little of a pass is padding; every sequence's value is its own, whatever it is batched with.
 */
export async function referenceLogProbs(engine: ComputeEngine, pairs: readonly PreferencePairTokens[], microBatchSize: number, maxLength: number, shouldStop?: () => boolean, rows?: readonly number[], onProgress?: (done: number, total: number) => void): Promise<ReferenceLogProbs> {
  const out = { chosen: new Float32Array(pairs.length).fill(Number.NaN), rejected: new Float32Array(pairs.length).fill(Number.NaN) };
  const jobs: Array<{ pair: number; side: "chosen" | "rejected"; seq: EncodedSequence }> = [];
  for (const i of rows ?? pairs.keys()) {
    const p = pairs[i]!;
    jobs.push({ pair: i, side: "chosen", seq: p.chosen }, { pair: i, side: "rejected", seq: p.rejected });
  }
  jobs.sort((a, b) => a.seq.ids.length - b.seq.ids.length);
  // Twice the training micro-batch: a forward pass keeps no activations for a backward one.
  const per = Math.max(1, 2 * microBatchSize);
  for (let start = 0; start < jobs.length; start += per) {
    await yieldNow();
    if (shouldStop?.()) throw new CancelledError();
    const part = jobs.slice(start, start + per);
    const values = await engine.sequenceLogProbs(makeBatch(part.map((j) => j.seq), engine.config.pad_token_id, maxLength));
    part.forEach((j, k) => {
      out[j.side][j.pair] = values[k] as number;
    });
    onProgress?.(Math.min(jobs.length, start + per) / 2, jobs.length / 2);
  }
  return out;
}

/** DPO with the sigmoid loss against fixed reference log-probabilities. */
export function trainDpo(engine: ComputeEngine, pairs: readonly PreferencePairTokens[], ref: ReferenceLogProbs, beta: number, s: TrainSettings, cb: TrainCallbacks = {}): Promise<StepLog[]> {
  return trainLoop(
    engine,
    pairs.length,
    s,
    cb,
    "DPO loss",
    async (rows, weight) => {
      const chosen = makeBatch(rows.map((i) => pairs[i]!.chosen), engine.config.pad_token_id, s.maxLength);
      const rejected = makeBatch(rows.map((i) => pairs[i]!.rejected), engine.config.pad_token_id, s.maxLength);
      const refC = Float32Array.from(rows, (i) => ref.chosen[i] as number);
      const refR = Float32Array.from(rows, (i) => ref.rejected[i] as number);
      return { metrics: await engine.dpoBackward(chosen, rejected, refC, refR, beta, weight), tokens: chosen.tokens + rejected.tokens };
    },
    ({ loss, ...dpo }) => ({ loss, dpo }),
  );
}

export type { TokenBatch };
