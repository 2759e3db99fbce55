import type { ModelConfig } from "../model/config";
import type { HostWeights } from "../model/weights";

/**
 * A right-padded batch for teacher forcing: inputs are ids[0..n-2], targets ids[1..n-1]; `mask` is 1 where the
 * target is a completion token (the rationale and EOS), 0 on the prompt and on padding.
 * Right padding needs no attention mask: causal attention keeps pads out of every real token's view.
 */
export interface TokenBatch {
  batch: number;
  length: number;
  inputs: Int32Array; // [batch, length]
  targets: Int32Array; // [batch, length]
  mask: Float32Array; // [batch, length]
  /** Completion tokens per row (the mask's row sums). */
  tokens: number;
  /** Rows cut to fit maxLength. */
  truncated: number;
}

/** The DPO metrics under TRL's names, averaged over the batch. */
export interface DpoMetrics {
  loss: number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  "rewards/accuracies": number;
  "logps/chosen": number;
  "logps/rejected": number;
}

export interface OptimizerSettings {
  weightDecay: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const DEFAULT_OPTIMIZER: OptimizerSettings = { weightDecay: 0.01, maxGradNorm: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Incremental decoding of one batch with a KV cache. */
export interface DecodeSession {
  /** Appends one token per row; returns next-token logits [rows, V]. */
  step(tokens: readonly number[]): Promise<Float32Array>;
  dispose(): void;
}

/**
 * What a compute engine does for the method: training steps (SFT, DPO) with gradient accumulation and
 * AdamW, per-sequence log-probabilities, and incremental decoding. Everything else (schedules, batching,
 * sampling policy, the calculator) is engine-independent and lives in core.
 */
export interface ComputeEngine {
  /** "tfjs" or "onnxruntime". */
  readonly name: string;
  /** Where it computes, e.g. "wasm (SIMD)"; recorded with every metric. */
  readonly device: string;
  readonly config: ModelConfig;

  /** Adds the gradient of (SFT loss × scale) to the accumulated gradients; returns the unscaled loss. */
  sftBackward(batch: TokenBatch, scale: number): Promise<{ loss: number }>;
  /** Adds the gradient of (DPO loss × scale); reference log-probs are inputs, fixed for the round. */
  dpoBackward(chosen: TokenBatch, rejected: TokenBatch, refChosen: Float32Array, refRejected: Float32Array, beta: number, scale: number): Promise<DpoMetrics>;
  /** Clips the accumulated gradient by global norm, applies AdamW at `lr`, clears the accumulation. */
  optimizerStep(lr: number, settings: OptimizerSettings): Promise<{ gradNorm: number }>;
  /** Drops accumulated gradients and optimiser moments (a new training stage). */
  resetOptimizer(): void;
  /** Sum of completion-token log-probabilities per row, [batch]. */
  sequenceLogProbs(batch: TokenBatch): Promise<Float32Array>;
  /**
   * Starts decoding: prompts (left-padded inside) are run, next-token logits [rows, V] returned. `maxNewTokens`:
   * how many tokens the session will append at most, so an engine can size what it holds per position (ORT's
   * RoPE tables); without it, any number up to max_position_embeddings.
   */
  startDecoding(prompts: readonly number[][], maxNewTokens?: number): Promise<{ session: DecodeSession; logits: Float32Array }>;

  getWeights(): Promise<HostWeights>;
  setWeights(weights: HostWeights): void;
  dispose(): void;
}
