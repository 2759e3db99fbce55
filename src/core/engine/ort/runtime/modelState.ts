/**
 * Where OrtEngine keeps the model's state (weights, accumulated gradients, Adam moments), one tensor per
 * parameter under its Hugging Face name, and what moves between the host and the provider.
 *
 * - HostState (hostState.ts), for the CPU provider, whose device is the host: plain Float32Arrays that each run reads in place
 *   (onnxruntime-node wraps a fed typed array without copying it). Gradients come out of the backward graph
 *   (the binding copies each output into a new JavaScript buffer: that buffer is kept as the accumulator, not
 *   copied again), and AdamW updates the arrays in place (adamw.ts).
 * - DeviceState (deviceState.ts), for webgpu: gpu-buffer tensors that stay on the GPU. Weights go up once (setWeights, lazily)
 *   and come back only when asked for (getWeights: checkpoints, snapshots, engine switches); the backward graph
 *   adds into the accumulated gradients on the device (GraphOptions.accumulateGradients) and the AdamW graph
 *   (stateGraphs.ts) updates them there. A steady-state step moves the batch in and a few scalars each way.
 *   Reading a gpu-buffer tensor's data from JavaScript (getData) aborted the process on ORT 1.30: values come
 *   back only through a session whose outputs are on the CPU (moveGraph).
 *
 * onnxruntime-node 1.30 keeps outputs on a device only for WebGPU (its binding's only device memory is
 * "WebGPU_Buf"), so the cuda provider keeps its state on the host, as the CPU provider does, and ORT copies it
 * to the GPU on every run.
 */
import { isDecayed, parameterShapes } from "../../../model/architecture";
import type { ModelConfig } from "../../../model/config";
import type { HostWeights } from "../../../model/weights";
import type { OptimizerSettings } from "../../computeEngine";
import { blockName, type RowBlocks } from "../llama/rowBlocks";
import type { OrtFeeds, OrtSession, OrtTensor } from "./ortRuntime";
import type { OPTIMIZER_SCALARS } from "./stateGraphs";

/** Bytes moved, cumulative (OrtEngine.transfers). */
export interface TransferCounts {
  /** Host memory handed to a run on another device (on the CPU provider: the batch and scalars fed). */
  toDevice: number;
  /** Outputs read back to the host (on the CPU provider: losses and metrics). */
  toHost: number;
  /** CPU provider only: state outputs (gradients) that the binding copied from ORT's memory into JavaScript's. */
  withinHost: number;
}

export interface Slot {
  name: string;
  shape: number[];
  size: number;
  decayed: boolean;
  /** A row block of a larger parameter: its name and the block's first row. */
  of?: { name: string; row: number };
}

export function slotsOf(c: ModelConfig): Slot[] {
  return [...parameterShapes(c)].map(([name, shape]) => ({ name, shape, size: shape.reduce((a, b) => a * b, 1), decayed: isDecayed(name) }));
}

/** The tables the graphs can take in row blocks (llamaGraphs blockedGather, projectedTokenLogProbs). */
const SPLITTABLE = new Set(["model.embed_tokens.weight", "lm_head.weight"]);

/**
 * The slots with the vocabulary tables split into row blocks of near-equal size that each fit `limitBytes` as
 * float32 (WebGPU: one buffer per tensor, at most 1 GiB on common adapters), and the blocks for the graphs. In the
 * families supported only these tables grow past a buffer (vocabulary × hidden); any other parameter that large
 * is refused by name.
 */
export function splitSlots(slots: readonly Slot[], limitBytes: number): { slots: Slot[]; blocks: RowBlocks } {
  const out: Slot[] = [];
  const blocks = new Map<string, number[]>();
  for (const s of slots) {
    if (s.size * 4 <= limitBytes) {
      out.push(s);
      continue;
    }
    if (!SPLITTABLE.has(s.name)) throw new Error(`${s.name} [${s.shape.join(" × ")}] takes ${((s.size * 4) / 1024 ** 3).toFixed(2)} GiB as float32, more than one buffer of the device holds; only the vocabulary tables are split. Set engine.executionProvider to "cpu" for this model.`);
    const rows = s.shape[0]!;
    const width = s.size / rows;
    const maxRows = Math.floor(limitBytes / (width * 4));
    if (maxRows < 1) throw new Error(`${s.name}: one row of ${width} floats is larger than the device's ${limitBytes}-byte buffers`);
    const count = Math.ceil(rows / maxRows);
    const per = Math.ceil(rows / count);
    const sizes: number[] = [];
    for (let row = 0, k = 0; row < rows; row += per, k++) {
      const n = Math.min(per, rows - row);
      sizes.push(n);
      out.push({ name: blockName(s.name, k), shape: [n, ...s.shape.slice(1)], size: n * width, decayed: s.decayed, of: { name: s.name, row } });
    }
    blocks.set(s.name, sizes);
  }
  return { slots: out, blocks };
}

/** A run's outputs as tensors. */
export type OrtResults = Record<string, OrtTensor>;

/** Output names that are model state, as opposed to losses, metrics and log-probabilities. */
function isStateOutput(name: string): boolean {
  return name.startsWith("grad.") || name.startsWith("new_") || name.startsWith("out.");
}

function bytesOf(t: OrtTensor): number {
  return (t.data as ArrayBufferView).byteLength;
}

/**
 * Runs a session and counts what crossed: `host` feeds are host data (the batch, scalars); `state` feeds are
 * state tensors, counted only if they are on the host while the provider is not (on cuda, whose state is host
 * arrays, every run feeds all the weights: they count). Outputs on the CPU count as read back, except state
 * outputs on the CPU provider, which never left the host (withinHost).
 * `providerIsHost`: the provider computes in the host's memory (the CPU provider).
 */
export async function meteredRun(session: OrtSession, counts: TransferCounts, providerIsHost: boolean, state: OrtFeeds, host: OrtFeeds, fetches?: readonly string[]): Promise<OrtResults> {
  for (const t of Object.values(host)) counts.toDevice += bytesOf(t);
  if (!providerIsHost) for (const t of Object.values(state)) if (t.location === "cpu") counts.toDevice += bytesOf(t);
  const feeds = { ...state, ...host };
  const out = (fetches ? await session.run(feeds, [...fetches]) : await session.run(feeds)) as unknown as OrtResults;
  for (const [name, t] of Object.entries(out)) {
    if (t.location !== "cpu") continue;
    if (providerIsHost && isStateOutput(name)) counts.withinHost += bytesOf(t);
    else counts.toHost += bytesOf(t);
  }
  return out;
}

/** What OrtEngine asks of its state, wherever it lives. */
export interface ModelState {
  /** true: training graphs add into grad_in.<name> (GraphOptions.accumulateGradients). */
  readonly accumulatesInGraph: boolean;
  /** Whether the host is the provider's memory (CPU): decoding may embed host views of the weights. */
  readonly deviceIsHost: boolean;
  /** Readies the state for runs (uploads weights set since the last run, makes the first gradient buffers). */
  prepare(): Promise<void>;
  /** The weights as feeds (after prepare): no copy on either side. */
  paramFeeds(): OrtFeeds;
  /**
   * The weights as feeds for a reader that spans later steps (a decode session fed its weights): they stay valid
   * until `release`, whatever replaces them meanwhile.
   */
  holdParams(): { feeds: OrtFeeds; release(): void };
  /** The accumulated gradients and whether to add to them (accumulatesInGraph only; after prepare). */
  gradientFeeds(): OrtFeeds;
  /** Takes a training run's grad.<name> outputs as the accumulated gradients. */
  takeGradients(out: OrtResults): void;
  readonly hasGradients: boolean;
  /** AdamW with clipping at optimizer step `step` (1-based); returns the gradient norm, clears the gradients. */
  optimizerStep(step: number, lr: number, s: OptimizerSettings): Promise<number>;
  /** Drops the Adam moments and any accumulated gradients. */
  resetOptimizer(): void;
  accumulatedGradients(): Promise<HostWeights | null>;
  getWeights(): Promise<HostWeights>;
  /** Copies the weights in (validated by the engine); `adopt`: takes the caller's arrays where it can (HostState). */
  setWeights(w: HostWeights, adopt?: boolean): void;
  /** The weights by name as views (host state only: for building a graph from them at once). */
  hostViews(): HostWeights;
  dispose(): void;
}

export function optimizerScalars(step: number, lr: number, s: OptimizerSettings): Record<(typeof OPTIMIZER_SCALARS)[number], number> {
  return {
    beta1: s.beta1,
    one_minus_beta1: 1 - s.beta1,
    beta2: s.beta2,
    one_minus_beta2: 1 - s.beta2,
    bias_correction1: 1 - Math.pow(s.beta1, step),
    bias_correction2: 1 - Math.pow(s.beta2, step),
    eps: s.eps,
    lr,
    decay_factor: 1 - lr * s.weightDecay,
  };
}

/** State outputs on the device, the rest (losses, metrics, the gradient norm) on the host. */
export function deviceOutputs(names: readonly string[]): Record<string, "cpu" | "gpu-buffer"> {
  return Object.fromEntries(names.map((n) => [n, isStateOutput(n) ? "gpu-buffer" : "cpu"]));
}
