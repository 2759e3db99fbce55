/**
 * Where OrtEngine keeps the model's state (weights, accumulated gradients, Adam moments), one tensor per
 * parameter under its Hugging Face name, and what moves between the host and the provider.
 *
 * - HostState, for the CPU provider, whose device is the host: plain Float32Arrays that each run reads in place
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
import { adamwInPlace, clipFactor, sumSquares } from "./adamw";
import { GraphNames } from "../llama/llamaGraphs";
import { blockName, type RowBlocks } from "../llama/rowBlocks";
import type { Ort, OrtFeeds, OrtSession, OrtTensor } from "./ortRuntime";
import { parkWeights, parkingDirectory, releaseArrays, type ParkedWeights } from "./parkedWeights";
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

/** The CPU provider's state: host arrays, updated in place. */
export class HostState implements ModelState {
  readonly accumulatesInGraph = false;
  readonly deviceIsHost = true;
  private weights = new Map<string, Float32Array>();
  /** The weights while parked on disk (park); `weights` is empty then, and live() reads them back. */
  private parked: ParkedWeights | null = null;
  private grads: Map<string, Float32Array> | null = null;
  private m: Map<string, Float32Array> | null = null;
  private v: Map<string, Float32Array> | null = null;

  constructor(
    private readonly ort: Ort,
    private readonly slots: readonly Slot[],
  ) {}

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  paramFeeds(): OrtFeeds {
    const weights = this.live();
    const feeds: OrtFeeds = {};
    for (const s of this.slots) feeds[s.name] = new this.ort.Tensor("float32", weights.get(s.name)!, s.shape);
    return feeds;
  }

  /** Whether the weights are parked on disk now (not resident): for tests and the memory meter's readers. */
  get isParked(): boolean {
    return this.parked !== null;
  }

  /** The weights, read back first if they were parked. */
  private live(): Map<string, Float32Array> {
    const p = this.parked;
    if (p) {
      this.parked = null;
      this.weights = p.restore();
    }
    return this.weights;
  }

  /**
   * Sets the weights aside on disk and frees them (parkedWeights.ts) until something reads them: called once a
   * decoder holds its own copy. Nothing happens where there is no disk to park on or the file cannot be written.
   */
  async park(): Promise<void> {
    const dir = parkingDirectory();
    if (!dir || this.parked || this.weights.size === 0) return;
    const p = parkWeights(this.weights, dir);
    if (!p) return;
    const arrays = [...this.weights.values()];
    this.weights = new Map();
    this.parked = p;
    await releaseArrays(arrays);
  }

  gradientFeeds(): OrtFeeds {
    return {};
  }

  /**
   * Host arrays are updated in place, so a fed decoder reads the weights as they are at each step. On the CPU only
   * tests feed decoding its weights (OrtDecoding embeds them, one decoder per weight version), so nothing is copied.
   */
  holdParams(): { feeds: OrtFeeds; release(): void } {
    return { feeds: this.paramFeeds(), release: () => undefined };
  }

  takeGradients(out: OrtResults): void {
    const first = !this.grads;
    const grads = (this.grads ??= new Map());
    for (const s of this.slots) {
      const g = out[GraphNames.grad(s.name)]!.data as Float32Array;
      if (first) {
        grads.set(s.name, g); // the binding's own copy, nobody else's: kept, not copied again
        continue;
      }
      const acc = grads.get(s.name)!;
      for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + g[i]!;
    }
  }

  get hasGradients(): boolean {
    return this.grads !== null;
  }

  optimizerStep(step: number, lr: number, s: OptimizerSettings): Promise<number> {
    const grads = this.grads;
    if (!grads) throw new Error("optimizerStep without accumulated gradients");
    this.grads = null;
    let sq = 0;
    for (const g of grads.values()) sq += sumSquares(g);
    // float32, as the graph and TfEngine report it.
    const gradNorm = Math.fround(Math.sqrt(sq));
    if (!Number.isFinite(gradNorm)) throw new Error(`gradient norm is ${gradNorm}: the step was not applied`);
    const zeros = (): Map<string, Float32Array> => new Map(this.slots.map((x) => [x.name, new Float32Array(x.size)]));
    const m = (this.m ??= zeros());
    const v = (this.v ??= zeros());
    const k = optimizerScalars(step, lr, s);
    const weights = this.live();
    const clip = Math.fround(clipFactor(gradNorm, s.maxGradNorm));
    for (const x of this.slots) {
      adamwInPlace(weights.get(x.name)!, grads.get(x.name)!, m.get(x.name)!, v.get(x.name)!, {
        beta1: k.beta1,
        beta2: k.beta2,
        biasCorrection1: k.bias_correction1,
        biasCorrection2: k.bias_correction2,
        eps: k.eps,
        lr,
        decayFactor: x.decayed ? k.decay_factor : 1,
        clip,
      });
    }
    return Promise.resolve(gradNorm);
  }

  resetOptimizer(): void {
    this.grads = null;
    this.m = null;
    this.v = null;
  }

  accumulatedGradients(): Promise<HostWeights | null> {
    const g = this.grads;
    return Promise.resolve(g ? new Map(this.slots.map((s) => [s.name, { shape: s.shape.slice(), data: g.get(s.name)!.slice() }])) : null);
  }

  getWeights(): Promise<HostWeights> {
    const weights = this.live();
    return Promise.resolve(new Map(this.slots.map((s) => [s.name, { shape: s.shape.slice(), data: weights.get(s.name)!.slice() }])));
  }

  /**
   * Copies the weights in (the caller keeps its arrays; ours are updated in place by optimizer steps), or, with
   * `adopt`, takes each array that is a whole buffer of its own as it is: the caller hands them over and must not
   * read or write them again (they may be parked and freed).
   */
  setWeights(w: HostWeights, adopt = false): void {
    this.parked?.discard();
    this.parked = null;
    const own = (a: Float32Array): boolean => adopt && a.byteOffset === 0 && a.buffer instanceof ArrayBuffer && a.byteLength === a.buffer.byteLength;
    this.weights = new Map(this.slots.map((s) => {
      const a = w.get(s.name)!.data;
      return [s.name, own(a) ? a : Float32Array.from(a)];
    }));
  }

  hostViews(): HostWeights {
    const weights = this.live();
    return new Map(this.slots.map((s) => [s.name, { shape: s.shape, data: weights.get(s.name)! }]));
  }

  dispose(): void {
    this.resetOptimizer();
    this.parked?.discard();
    this.parked = null;
  }
}

/** State outputs on the device, the rest (losses, metrics, the gradient norm) on the host. */
export function deviceOutputs(names: readonly string[]): Record<string, "cpu" | "gpu-buffer"> {
  return Object.fromEntries(names.map((n) => [n, isStateOutput(n) ? "gpu-buffer" : "cpu"]));
}
