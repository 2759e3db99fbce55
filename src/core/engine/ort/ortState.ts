/**
 * Where OrtEngine keeps the model's state (weights, accumulated gradients, Adam moments), one tensor per
 * parameter under its Hugging Face name, and what moves between the host and the provider.
 *
 * - HostState, for the CPU provider, whose device is the host: plain Float32Arrays that each run reads in place
 *   (onnxruntime-node wraps a fed typed array without copying it). Gradients come out of the backward graph
 *   (the binding copies each output into a new JavaScript buffer: that buffer is kept as the accumulator, not
 *   copied again), and AdamW updates the arrays in place (adamw.ts).
 * - DeviceState, for webgpu: gpu-buffer tensors that stay on the GPU. Weights go up once (setWeights, lazily)
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
import { isDecayed, parameterShapes } from "../../model/architecture";
import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import type { OptimizerSettings } from "../computeEngine";
import { adamwInPlace, clipFactor, sumSquares } from "./adamw";
import { GraphNames, blockName, type RowBlocks } from "./llamaGraphs";
import { createSession, type Ort, type OrtFeeds, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";
import { MoveNames, OPTIMIZER_SCALARS, OptimizerNames, moveGraph, optimizerGraph, zerosGraph } from "./stateGraphs";

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
 * state tensors, counted only if they are on the host while the provider is not. Outputs on the CPU count as
 * read back, except state outputs on the CPU provider, which never left the host (withinHost).
 */
export async function meteredRun(session: OrtSession, counts: TransferCounts, deviceIsHost: boolean, state: OrtFeeds, host: OrtFeeds, fetches?: readonly string[]): Promise<OrtResults> {
  for (const t of Object.values(host)) counts.toDevice += bytesOf(t);
  if (!deviceIsHost) for (const t of Object.values(state)) if (t.location === "cpu") counts.toDevice += bytesOf(t);
  const feeds = { ...state, ...host };
  const out = (fetches ? await session.run(feeds, [...fetches]) : await session.run(feeds)) as unknown as OrtResults;
  for (const [name, t] of Object.entries(out)) {
    if (t.location !== "cpu") continue;
    if (deviceIsHost && isStateOutput(name)) counts.withinHost += bytesOf(t);
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
  /** Copies the weights in (validated by the engine). */
  setWeights(w: HostWeights): void;
  /** The weights by name as views (host state only: for building a graph from them at once). */
  hostViews(): HostWeights;
  dispose(): void;
}

function optimizerScalars(step: number, lr: number, s: OptimizerSettings): Record<(typeof OPTIMIZER_SCALARS)[number], number> {
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
    const feeds: OrtFeeds = {};
    for (const s of this.slots) feeds[s.name] = new this.ort.Tensor("float32", this.weights.get(s.name)!, s.shape);
    return feeds;
  }

  gradientFeeds(): OrtFeeds {
    return {};
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
    const clip = Math.fround(clipFactor(gradNorm, s.maxGradNorm));
    for (const x of this.slots) {
      adamwInPlace(this.weights.get(x.name)!, grads.get(x.name)!, m.get(x.name)!, v.get(x.name)!, {
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
    return Promise.resolve(new Map(this.slots.map((s) => [s.name, { shape: s.shape.slice(), data: this.weights.get(s.name)!.slice() }])));
  }

  setWeights(w: HostWeights): void {
    // Copies: the caller keeps its arrays, and ours are updated in place by optimizer steps.
    this.weights = new Map(this.slots.map((s) => [s.name, Float32Array.from(w.get(s.name)!.data)]));
  }

  hostViews(): HostWeights {
    return new Map(this.slots.map((s) => [s.name, { shape: s.shape, data: this.weights.get(s.name)! }]));
  }

  dispose(): void {
    this.resetOptimizer();
  }
}

type TensorMap = Map<string, OrtTensor>;

/** The webgpu provider's state: gpu-buffer tensors, replaced by each run's outputs. */
export class DeviceState implements ModelState {
  readonly accumulatesInGraph = true;
  readonly deviceIsHost = false;
  private weights: TensorMap | null = null;
  /** Weights set on the host and not yet uploaded. */
  private pending: HostWeights | null = null;
  /** Gradient buffers: summed into while `live`, otherwise stale (the next run overwrites them). */
  private grads: TensorMap | null = null;
  private live = false;
  private m: TensorMap | null = null;
  private v: TensorMap | null = null;
  private readonly sessions = new Map<string, Promise<OrtSession>>();

  /**
   * `slots`: the device's tensors, some of them row blocks of `params` (splitSlots); weights and gradients go in
   * and come out by parameter, split and joined here.
   */
  constructor(
    private readonly ort: Ort,
    private readonly params: readonly Slot[],
    private readonly slots: readonly Slot[],
    private readonly settings: SessionSettings,
    private readonly counts: TransferCounts,
  ) {}

  /** A device slot's part of a parameter's host array. */
  private part(w: HostWeights, s: Slot): Float32Array {
    const src = w.get(s.of?.name ?? s.name)!.data as Float32Array;
    if (!s.of) return src;
    const width = s.size / s.shape[0]!;
    return src.subarray(s.of.row * width, s.of.row * width + s.size);
  }

  /** Device slots' arrays joined into parameters. */
  private join(parts: ReadonlyMap<string, Float32Array>): HostWeights {
    const out: HostWeights = new Map();
    for (const p of this.params) {
      const whole = parts.get(p.name);
      if (whole) {
        out.set(p.name, { shape: p.shape.slice(), data: whole });
        continue;
      }
      const data = new Float32Array(p.size);
      const width = p.size / p.shape[0]!;
      for (const s of this.slots) if (s.of?.name === p.name) data.set(parts.get(s.name)!, s.of.row * width);
      out.set(p.name, { shape: p.shape.slice(), data });
    }
    return out;
  }

  /** upload: outputs on the device; download: on the host; zeros: made on the device; optimizer: state on the device. */
  private session(kind: "upload" | "download" | "zeros" | "optimizer"): Promise<OrtSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      const graph = kind === "zeros" ? zerosGraph(this.slots) : kind === "optimizer" ? optimizerGraph(this.slots) : moveGraph(this.slots);
      const onDevice = kind !== "download";
      s = createSession(graph.toBytes(), this.settings, { spin: false, ...(onDevice ? { outputLocations: deviceOutputs(graph.outputNames()) } : {}) });
      s.catch(() => this.sessions.delete(kind));
      this.sessions.set(kind, s);
    }
    return s;
  }

  private async move(kind: "upload" | "download", feeds: OrtFeeds): Promise<OrtResults> {
    const s = await this.session(kind);
    return kind === "upload" ? meteredRun(s, this.counts, false, {}, feeds) : meteredRun(s, this.counts, false, feeds, {});
  }

  private async zeros(): Promise<TensorMap> {
    const out = await meteredRun(await this.session("zeros"), this.counts, false, {}, {});
    return new Map(this.slots.map((s) => [s.name, out[MoveNames.output(s.name)]!]));
  }

  async prepare(): Promise<void> {
    const pending = this.pending;
    if (pending) {
      const feeds: OrtFeeds = {};
      for (const s of this.slots) feeds[s.name] = new this.ort.Tensor("float32", this.part(pending, s), s.shape);
      const out = await this.move("upload", feeds);
      if (this.pending === pending) {
        disposeAll(this.weights);
        this.weights = new Map(this.slots.map((s) => [s.name, out[MoveNames.output(s.name)]!]));
        this.pending = null;
      } else disposeAll(new Map(Object.entries(out)));
    }
    if (!this.grads) {
      this.grads = await this.zeros();
      this.live = false;
    }
  }

  paramFeeds(): OrtFeeds {
    const w = this.weights;
    if (!w || this.pending) throw new Error("DeviceState: prepare() before running");
    return Object.fromEntries(this.slots.map((s) => [s.name, w.get(s.name)!]));
  }

  gradientFeeds(): OrtFeeds {
    const g = this.grads;
    if (!g) throw new Error("DeviceState: prepare() before running");
    const feeds: OrtFeeds = { accumulate: new this.ort.Tensor("bool", Uint8Array.of(this.live ? 1 : 0), []) };
    for (const s of this.slots) feeds[GraphNames.gradIn(s.name)] = g.get(s.name)!;
    return feeds;
  }

  takeGradients(out: OrtResults): void {
    const next = new Map(this.slots.map((s) => [s.name, out[GraphNames.grad(s.name)]!]));
    disposeAll(this.grads);
    this.grads = next;
    this.live = true;
  }

  get hasGradients(): boolean {
    return this.live;
  }

  async optimizerStep(step: number, lr: number, s: OptimizerSettings): Promise<number> {
    if (!this.live || !this.grads) throw new Error("optimizerStep without accumulated gradients");
    await this.prepare();
    this.m ??= await this.zeros();
    this.v ??= await this.zeros();
    const [w, g, m, v] = [this.weights!, this.grads, this.m, this.v];
    const state: OrtFeeds = {};
    for (const x of this.slots) {
      state[OptimizerNames.param(x.name)] = w.get(x.name)!;
      state[OptimizerNames.grad(x.name)] = g.get(x.name)!;
      state[OptimizerNames.m(x.name)] = m.get(x.name)!;
      state[OptimizerNames.v(x.name)] = v.get(x.name)!;
    }
    const host: OrtFeeds = {};
    for (const [k, x] of Object.entries(optimizerScalars(step, lr, s))) host[k] = new this.ort.Tensor("float32", Float32Array.of(x), []);
    host["max_grad_norm"] = new this.ort.Tensor("float64", Float64Array.of(s.maxGradNorm), []);
    const out = await meteredRun(await this.session("optimizer"), this.counts, false, state, host);
    this.live = false;
    const gradNorm = (out["grad_norm"]!.data as Float32Array)[0]!;
    const pick = (name: (p: string) => string): TensorMap => new Map(this.slots.map((x) => [x.name, out[name(x.name)]!]));
    const next = { w: pick(OptimizerNames.newParam), m: pick(OptimizerNames.newM), v: pick(OptimizerNames.newV) };
    if (!Number.isFinite(gradNorm)) {
      for (const t of Object.values(next)) disposeAll(t);
      throw new Error(`gradient norm is ${gradNorm}: the step was not applied`);
    }
    disposeAll(w);
    disposeAll(m);
    disposeAll(v);
    this.weights = next.w;
    this.m = next.m;
    this.v = next.v;
    return gradNorm;
  }

  resetOptimizer(): void {
    disposeAll(this.m);
    disposeAll(this.v);
    this.m = null;
    this.v = null;
    this.live = false;
  }

  private async download(map: TensorMap): Promise<HostWeights> {
    const out = await this.move("download", Object.fromEntries(this.slots.map((s) => [s.name, map.get(s.name)!])));
    return this.join(new Map(this.slots.map((s) => [s.name, out[MoveNames.output(s.name)]!.data as Float32Array])));
  }

  async accumulatedGradients(): Promise<HostWeights | null> {
    return this.live && this.grads ? this.download(this.grads) : null;
  }

  async getWeights(): Promise<HostWeights> {
    if (this.pending) return new Map(this.params.map((s) => [s.name, { shape: s.shape.slice(), data: (this.pending!.get(s.name)!.data as Float32Array).slice() }]));
    await this.prepare();
    return this.download(this.weights!);
  }

  setWeights(w: HostWeights): void {
    this.pending = new Map(this.params.map((s) => [s.name, { shape: s.shape.slice(), data: Float32Array.from(w.get(s.name)!.data) }]));
  }

  hostViews(): HostWeights {
    throw new Error("the weights are on the device: decoding feeds them (DeviceState)");
  }

  dispose(): void {
    this.resetOptimizer();
    disposeAll(this.grads);
    disposeAll(this.weights);
    this.grads = null;
    this.weights = null;
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) void s.then((x) => x.release()).catch(() => undefined);
  }
}

/** State outputs on the device, the rest (losses, metrics, the gradient norm) on the host. */
export function deviceOutputs(names: readonly string[]): Record<string, "cpu" | "gpu-buffer"> {
  return Object.fromEntries(names.map((n) => [n, isStateOutput(n) ? "gpu-buffer" : "cpu"]));
}

function disposeAll(map: TensorMap | null): void {
  if (map) for (const t of map.values()) t.dispose();
}
