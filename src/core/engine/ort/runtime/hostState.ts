/**
 * The CPU provider's model state (modelState.ts says where each provider keeps it): plain Float32Arrays that each
 * run reads in place (onnxruntime-node wraps a fed typed array without copying it). Gradients come out of the
 * backward graph (the binding copies each output into a new JavaScript buffer: that buffer is kept as the
 * accumulator, not copied again), and AdamW updates the arrays in place (adamw.ts).
 */
import type { HostWeights } from "../../../model/weights";
import type { OptimizerSettings } from "../../computeEngine";
import { adamwInPlace, clipFactor, sumSquares } from "./adamw";
import { GraphNames } from "../llama/llamaGraphs";
import type { Ort, OrtFeeds } from "./ortRuntime";
import { parkWeights, parkingDirectory, releaseArrays, type ParkedWeights } from "./parkedWeights";
import { optimizerScalars, type ModelState, type OrtResults, type Slot } from "./modelState";

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
