import { Rng } from "../util/rng";
import { makeBatch, type TokenBatch } from "./batching";
import { cosineWithWarmup, warmupSteps } from "./schedule";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type OptimizerSettings } from "../engine/computeEngine";
import type { EncodedSequence } from "../model/promptFormat";
import type { DpoMetrics } from "./dpoLoss";
import { CancelledError } from "../sample/sampler";

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
  tokens_per_second: number;
  elapsed_ms: number;
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

/** Supervised fine-tuning: cross-entropy on the completion tokens of each sequence. */
export async function trainSft(engine: ComputeEngine, data: readonly EncodedSequence[], s: TrainSettings, cb: TrainCallbacks = {}): Promise<StepLog[]> {
  const order = new BatchOrder(data.length, s.seed);
  const warm = warmupSteps(s.steps, s.warmupRatio);
  const logs: StepLog[] = [];
  const started = Date.now();
  engine.resetOptimizer();
  for (let step = 0; step < s.steps; step++) {
    const t0 = Date.now();
    const rows = order.next(s.batchSize);
    let loss = 0;
    let tokens = 0;
    for (const micro of chunks(rows, s.microBatchSize)) {
      if (cb.shouldStop?.()) throw new CancelledError();
      const batch = makeBatch(micro.map((i) => data[i] as EncodedSequence), engine.config.pad_token_id, s.maxLength);
      const r = await engine.sftBackward(batch, micro.length / rows.length);
      checkFinite(r.loss, "SFT loss", step);
      loss += (r.loss * micro.length) / rows.length;
      tokens += batch.tokens;
    }
    const lr = cosineWithWarmup(step, s.steps, warm, s.learningRate);
    const { gradNorm } = await engine.optimizerStep(lr, s.optimizer ?? DEFAULT_OPTIMIZER);
    const ms = Date.now() - t0;
    const log: StepLog = { step: step + 1, totalSteps: s.steps, loss, learning_rate: lr, grad_norm: gradNorm, tokens, tokens_per_second: (tokens * 1000) / Math.max(1, ms), elapsed_ms: Date.now() - started };
    logs.push(log);
    cb.onStep?.(log);
  }
  return logs;
}

export interface PreferencePairTokens {
  chosen: EncodedSequence;
  rejected: EncodedSequence;
}

export interface ReferenceLogProbs {
  chosen: Float32Array;
  rejected: Float32Array;
}

/** Log-probabilities of every chosen and rejected completion under the (frozen) reference: once per round. */
export async function referenceLogProbs(engine: ComputeEngine, pairs: readonly PreferencePairTokens[], microBatchSize: number, maxLength: number, shouldStop?: () => boolean): Promise<ReferenceLogProbs> {
  const out = { chosen: new Float32Array(pairs.length), rejected: new Float32Array(pairs.length) };
  for (let start = 0; start < pairs.length; start += microBatchSize) {
    if (shouldStop?.()) throw new CancelledError();
    const part = pairs.slice(start, start + microBatchSize);
    out.chosen.set(await engine.sequenceLogProbs(makeBatch(part.map((p) => p.chosen), engine.config.pad_token_id, maxLength)), start);
    out.rejected.set(await engine.sequenceLogProbs(makeBatch(part.map((p) => p.rejected), engine.config.pad_token_id, maxLength)), start);
  }
  return out;
}

/** DPO with the sigmoid loss against fixed reference log-probabilities. */
export async function trainDpo(engine: ComputeEngine, pairs: readonly PreferencePairTokens[], ref: ReferenceLogProbs, beta: number, s: TrainSettings, cb: TrainCallbacks = {}): Promise<StepLog[]> {
  const order = new BatchOrder(pairs.length, s.seed);
  const warm = warmupSteps(s.steps, s.warmupRatio);
  const logs: StepLog[] = [];
  const started = Date.now();
  engine.resetOptimizer();
  for (let step = 0; step < s.steps; step++) {
    const t0 = Date.now();
    const rows = order.next(s.batchSize);
    const sum: DpoMetrics = { loss: 0, "rewards/chosen": 0, "rewards/rejected": 0, "rewards/margins": 0, "rewards/accuracies": 0, "logps/chosen": 0, "logps/rejected": 0 };
    let tokens = 0;
    for (const micro of chunks(rows, s.microBatchSize)) {
      if (cb.shouldStop?.()) throw new CancelledError();
      const chosen = makeBatch(micro.map((i) => pairs[i]!.chosen), engine.config.pad_token_id, s.maxLength);
      const rejected = makeBatch(micro.map((i) => pairs[i]!.rejected), engine.config.pad_token_id, s.maxLength);
      const refC = Float32Array.from(micro, (i) => ref.chosen[i] as number);
      const refR = Float32Array.from(micro, (i) => ref.rejected[i] as number);
      const m = await engine.dpoBackward(chosen, rejected, refC, refR, beta, micro.length / rows.length);
      checkFinite(m.loss, "DPO loss", step);
      for (const k of Object.keys(sum) as Array<keyof DpoMetrics>) sum[k] += (m[k] * micro.length) / rows.length;
      tokens += chosen.tokens + rejected.tokens;
    }
    const lr = cosineWithWarmup(step, s.steps, warm, s.learningRate);
    const { gradNorm } = await engine.optimizerStep(lr, s.optimizer ?? DEFAULT_OPTIMIZER);
    const ms = Date.now() - t0;
    const { loss, ...dpo } = sum;
    const log: StepLog = { step: step + 1, totalSteps: s.steps, loss, learning_rate: lr, grad_norm: gradNorm, tokens, tokens_per_second: (tokens * 1000) / Math.max(1, ms), elapsed_ms: Date.now() - started, dpo };
    logs.push(log);
    cb.onStep?.(log);
  }
  return logs;
}

export type { TokenBatch };
