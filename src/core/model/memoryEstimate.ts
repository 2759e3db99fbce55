import { headDim, parameterCount } from "./architecture";
import type { ModelConfig } from "./config";

/**
 * The peak memory of SFT, DPO and sampling for a model and the run's settings, with the ONNX Runtime engine on
 * the CPU as it is built today (the state on the host as float32, see modelState.ts), and a plain verdict for this
 * machine. An estimate from the engine's design, calibrated on one measurement (SmolLM2-135M's shape, 8 × 128
 * tokens: peak RSS 4.35 GiB for an SFT step and 4.16 GiB for a DPO step of 4 pairs in
 * `bench:train --preset smollm2-135m`); `selftrain model inspect` prints it before anything runs.
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
 * Vocabulary rows the engine's training and log-prob graphs take at a time (the ORT engine's VOCAB_CHUNK_ROWS, ort/llama/vocabularyChunks.ts; a
 * test keeps the two equal): above it, logits and the embedding's gradient are never whole.
 */
export const VOCAB_CHUNK = 16_384;
/** Vocabularies up to this many rows are taken whole (the ORT engine's WHOLE_VOCABULARY_ROWS; the same test). */
export const WHOLE_VOCABULARY = 65_536;


/** Node, ONNX Runtime and the graphs themselves. */
const RUNTIME_BASE = 400 * 2 ** 20;
/**
 * Live activation bytes per counted float (floatsPerTokenLayer counts generously: ORT frees many of them before
 * the backward pass peaks). Fitted to the 135M measurement (see the module comment).
 */
const ACTIVATION_FACTOR = 0.6;

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
    { what: "weights and Adam moments (float32, updated in place)", bytes: 3 * P * F32 },
    { what: "gradients (the copy onnxruntime-node hands back, kept as the sum)", bytes: P * F32 },
    { what: "gradients inside ONNX Runtime's arena while a step runs", bytes: P * F32 },
    { what: `activations (${sequences * s.microBatchSize} × ${s.maxLength} tokens)`, bytes: ACTIVATION_FACTOR * tokens * c.num_hidden_layers * floatsPerTokenLayer(c, s.maxLength) * F32 },
    // Whole: the log-softmax kept for the backward pass (the logits themselves are freed). In chunks: a chunk's
    // logits, their recomputation and gradient.
    c.vocab_size <= WHOLE_VOCABULARY
      ? { what: `log-probabilities over the whole vocabulary (${c.vocab_size.toLocaleString("en-US")} rows)`, bytes: tokens * c.vocab_size * F32 }
      : { what: `logits and their gradient (× ${VOCAB_CHUNK.toLocaleString("en-US")} vocabulary rows at a time)`, bytes: 3 * tokens * VOCAB_CHUNK * F32 },
    // The embedding's gradient: a one-hot [tokens, distinct tokens] product, scattered into zeros [V, D].
    { what: "embedding gradient (over the batch's distinct tokens)", bytes: (tokens * tokens + 2 * c.vocab_size * c.hidden_size) * F32 },
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
    // The decoding session holds the weights as its initializers (from its graph, or a weights file above 512 MB).
    { what: "weights inside the decoding session", bytes: weights },
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
