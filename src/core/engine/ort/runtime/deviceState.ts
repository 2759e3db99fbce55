/**
 * The webgpu provider's model state (runtime/modelState.ts): gpu-buffer tensors that stay on the GPU, replaced by each
 * run's outputs. Weights go up once (lazily, at the next run after setWeights) and come back only through a
 * session whose outputs are on the CPU (getWeights, accumulatedGradients); a gpu-buffer tensor's data is never
 * read from JavaScript (getData aborted the process on ORT 1.30). Vocabulary tables larger than one GPU buffer
 * are held as row blocks (splitSlots), split and joined here.
 */
import type { HostWeights } from "../../../model/weights";
import type { OptimizerSettings } from "../../computeEngine";
import { GraphNames } from "../llama/llamaGraphs";
import { createSession, releaseSessions, type Ort, type OrtFeeds, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";
import { deviceOutputs, meteredRun, optimizerScalars, type ModelState, type OrtResults, type Slot, type TransferCounts } from "./modelState";
import { MoveNames, OptimizerNames, moveGraph, optimizerGraph, zerosGraph } from "./stateGraphs";

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
   * Weight tensors that decode sessions still read, by how many: an optimizer step or an upload replaces the
   * weights, and the replaced tensors are disposed only once no decode session holds them (a decode session
   * goes on with the weights it started with, as an embedded decoder on the CPU does).
   */
  private readonly held = new Map<TensorMap, number>();

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
      // Graphs of fixed shapes, every node on the device: one that would fall back to the CPU is refused at once.
      s = createSession(graph.toBytes(), this.settings, { spin: false, cpuFallback: false, ...(onDevice ? { outputLocations: deviceOutputs(graph.outputNames()) } : {}) });
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
        this.letGo(this.weights);
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

  holdParams(): { feeds: OrtFeeds; release(): void } {
    const feeds = this.paramFeeds();
    const w = this.weights!;
    this.held.set(w, (this.held.get(w) ?? 0) + 1);
    let released = false;
    return {
      feeds,
      release: () => {
        if (released) return;
        released = true;
        const n = this.held.get(w)! - 1;
        if (n > 0) return void this.held.set(w, n);
        this.held.delete(w);
        if (w !== this.weights) disposeAll(w);
      },
    };
  }

  /** Replaced weights: disposed now, or by the last decode session that holds them. */
  private letGo(w: TensorMap | null): void {
    if (w && !this.held.has(w)) disposeAll(w);
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
    host["max_grad_norm"] = new this.ort.Tensor("float32", Float32Array.of(s.maxGradNorm), []);
    const out = await meteredRun(await this.session("optimizer"), this.counts, false, state, host);
    this.live = false;
    const gradNorm = (out["grad_norm"]!.data as Float32Array)[0]!;
    const pick = (name: (p: string) => string): TensorMap => new Map(this.slots.map((x) => [x.name, out[name(x.name)]!]));
    const next = { w: pick(OptimizerNames.newParam), m: pick(OptimizerNames.newM), v: pick(OptimizerNames.newV) };
    if (!Number.isFinite(gradNorm)) {
      for (const t of Object.values(next)) disposeAll(t);
      throw new Error(`gradient norm is ${gradNorm}: the step was not applied`);
    }
    this.weights = next.w;
    this.letGo(w);
    disposeAll(m);
    disposeAll(v);
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
    const w = this.weights;
    this.grads = null;
    this.weights = null;
    this.letGo(w);
    releaseSessions(this.sessions);
  }
}

function disposeAll(map: TensorMap | null): void {
  if (map) for (const t of map.values()) t.dispose();
}
