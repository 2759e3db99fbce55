import { headDim, parameterCount } from "./architecture";
import type { ModelConfig } from "./config";

/**
 * The peak memory of SFT, DPO and sampling for a model and the run's settings, with the ONNX Runtime engine on
 * the CPU as it is built today (the state kept on the host as float32; see issue 15), and a plain verdict for
 * this machine. An estimate from the engine's design, calibrated on one measurement (SmolLM2-135M's shape, an SFT
 * step of 8 × 128 tokens: 11.84 GiB peak RSS in `bench:train --preset smollm2-135m`); `selftrain model inspect`
 * prints it before anything runs.
 */
export interface TrainShape {
  microBatchSize: number;
  maxLength: number;
}

export interface MemorySettings {
  sft: TrainShape;
  dpo: TrainShape;
  sampling: { batchSize: number; maxNewTokens: number; promptTokens: number };
}

export interface MemoryPart {
  what: string;
  bytes: number;
}

export interface MemoryEstimate {
  activity: "SFT" | "DPO" | "sampling";
  bytes: number;
  parts: MemoryPart[];
}

const F32 = 4;
/**
 * Vocabulary rows the engine's training and log-prob graphs take at a time (the ORT engine's VOCAB_CHUNK_ROWS; a
 * test keeps the two equal): above it, logits and the embedding's gradient are never whole.
 */
export const VOCAB_CHUNK = 16_384;
/** Node, ONNX Runtime and the graphs themselves. */
const RUNTIME_BASE = 400 * 2 ** 20;
/**
 * Live activation bytes per saved float: the backward pass holds the forward's values and their gradients, and
 * ONNX Runtime's arena rounds allocations up. Fitted to the 135M measurement (see the module comment).
 */
const ACTIVATION_FACTOR = 4;

/** Floats one token keeps per layer for the backward pass (norms, projections, rotary q/k, scores and softmax over T keys, MLP). */
function floatsPerTokenLayer(c: ModelConfig, T: number): number {
  const hd = headDim(c);
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  return 6 * c.hidden_size + 2 * (H + 2 * KV) * hd + H * hd + 2 * H * T + 4 * c.intermediate_size;
}

function training(c: ModelConfig, s: TrainShape, sequences: number, activity: "SFT" | "DPO"): MemoryEstimate {
  const P = parameterCount(c);
  const tokens = sequences * s.microBatchSize * s.maxLength;
  const parts: MemoryPart[] = [
    { what: "weights, gradients and Adam moments (float32)", bytes: 4 * P * F32 },
    { what: "gradients and optimiser outputs handed back each step", bytes: 4 * P * F32 },
    { what: `activations (${sequences * s.microBatchSize} × ${s.maxLength} tokens)`, bytes: ACTIVATION_FACTOR * tokens * c.num_hidden_layers * floatsPerTokenLayer(c, s.maxLength) * F32 },
    { what: `logits and their gradient (× ${Math.min(c.vocab_size, VOCAB_CHUNK).toLocaleString("en-US")} vocabulary rows at a time)`, bytes: 3 * tokens * Math.min(c.vocab_size, VOCAB_CHUNK) * F32 },
    // The embedding's gradient: a one-hot [tokens, rows] product per vocabulary chunk.
    { what: "embedding gradient (one-hot, one vocabulary chunk at a time)", bytes: tokens * Math.min(c.vocab_size, VOCAB_CHUNK) * F32 },
    { what: "runtime", bytes: RUNTIME_BASE },
  ];
  return { activity, bytes: parts.reduce((a, p) => a + p.bytes, 0), parts };
}

function sampling(c: ModelConfig, s: MemorySettings["sampling"]): MemoryEstimate {
  const P = parameterCount(c);
  const weights = P * F32;
  const context = s.promptTokens + s.maxNewTokens;
  const parts: MemoryPart[] = [
    { what: "weights (float32)", bytes: weights },
    // The decode graph embeds weights up to 512 MB (a second copy inside the session); above, they are fed.
    { what: "weights inside the decoding graph", bytes: weights <= 512 * 2 ** 20 ? weights : 0 },
    { what: `key/value cache (${s.batchSize} rows × ${context} tokens)`, bytes: 2 * s.batchSize * context * c.num_hidden_layers * c.num_key_value_heads * headDim(c) * F32 },
    { what: "next-token logits", bytes: 2 * s.batchSize * c.vocab_size * F32 },
    { what: "runtime", bytes: RUNTIME_BASE },
  ];
  return { activity: "sampling", bytes: parts.reduce((a, p) => a + p.bytes, 0), parts };
}

export function estimateMemory(c: ModelConfig, s: MemorySettings): MemoryEstimate[] {
  // DPO's micro-batch holds the chosen and the rejected sequences; the reference log-probs are computed once, before.
  return [training(c, s.sft, 1, "SFT"), training(c, s.dpo, 2, "DPO"), sampling(c, s.sampling)];
}

/** "fits" or "does not fit", and what to change: the largest term that can be lowered. */
export function memoryVerdict(estimates: readonly MemoryEstimate[], totalBytes: number): { fits: boolean; lines: string[] } {
  const budget = 0.85 * totalBytes;
  const gb = (n: number) => `${(n / 2 ** 30).toFixed(1)} GB`;
  const lines: string[] = [];
  let fits = true;
  for (const e of estimates) {
    const ok = e.bytes <= budget;
    fits &&= ok;
    let advice = "";
    if (!ok) {
      const fixed = e.parts.filter((p) => /weights|gradients|runtime/.test(p.what)).reduce((a, p) => a + p.bytes, 0);
      if (fixed > budget) advice = ": the model alone needs more than this machine has; choose a smaller model";
      else if (e.activity === "sampling") advice = ": lower sampling.batchSize or sampling.maxNewTokens";
      else advice = `: lower ${e.activity === "SFT" ? "sft/warmup" : "dpo"}.microBatchSize or maxLength (the batch size stays: micro-batches accumulate)`;
    }
    lines.push(`${e.activity.padEnd(9)} ${gb(e.bytes).padStart(8)}  ${ok ? "fits" : "does not fit"}${advice}`);
  }
  lines.push(`this machine: ${gb(totalBytes)} of memory; verdict: ${fits ? "fits" : "does not fit"}`);
  return { fits, lines };
}
