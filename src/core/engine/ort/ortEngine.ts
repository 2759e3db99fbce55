import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import type { ComputeEngine, DecodeSession, DpoMetrics, OptimizerSettings, TokenBatch } from "../computeEngine";
import { DPO_METRIC_OUTPUTS, GraphNames, OptimizerNames, dpoGraph, logProbGraph, optimizerGraph, parameterLayout, sftGraph, type ParamGroup, type ParamSlot } from "./llamaGraphs";
import { OrtDecoding } from "./ortDecoding";
import { createSession, defaultThreads, loadOrt, type Ort, type OrtFeeds, type OrtOutputs, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";

type GraphKind = "sft" | "dpo" | "optimizer" | "logprobs";

const BUILDERS: Record<GraphKind, (c: ModelConfig) => { toBytes(): Uint8Array }> = {
  sft: sftGraph,
  dpo: dpoGraph,
  optimizer: optimizerGraph,
  logprobs: logProbGraph,
};

/** Choices the engine makes for itself, open to tests and benchmarks. */
export interface OrtEngineTuning {
  /** Largest parameter size, in bytes, whose weights the decoding graph embeds (ortDecoding's DECODE_EMBED_LIMIT_BYTES). */
  decodeEmbedLimitBytes?: number;
}

/** One flat Float32Array per parameter group (see parameterLayout). */
type Flat = Record<ParamGroup, Float32Array>;
const GROUPS: readonly ParamGroup[] = ["decayed", "other"];

/**
 * The fast engine: the model's forward, backward and AdamW step as ONNX graphs (src/core/engine/ort) run by the
 * stock onnxruntime-node. Weights, accumulated gradients and Adam moments live on the host in flat
 * Float32Arrays (two groups, see parameterLayout), fed to each run as per-parameter views under their Hugging
 * Face names: HostWeights in and out, so checkpoints are TfEngine's and a run can switch engines between
 * stages. Feeding costs a few milliseconds of a step; in exchange one session per graph kind serves every
 * weight value and (with symbolic batch and length) every shape. Decoding is the exception: its steps are short
 * enough that the feeding shows, so its session embeds the weights and is rebuilt when they change
 * (ortDecoding.ts).
 */
export class OrtEngine implements ComputeEngine {
  readonly name = "onnxruntime";
  readonly device: string;
  private readonly ort: Ort;
  private readonly slots: ParamSlot[];
  private readonly sizes: Record<ParamGroup, number>;
  private weights: Flat;
  private grads: Flat | null = null;
  /** The accumulation buffers, kept between steps: grads points at them while gradients are pending. */
  private gradBuffer: Flat | null = null;
  private m: Flat | null = null;
  private v: Flat | null = null;
  private step = 0;
  private readonly decoding: OrtDecoding;
  private readonly sessions = new Map<GraphKind, Promise<OrtSession>>();
  private readonly settings: SessionSettings;

  constructor(
    readonly config: ModelConfig,
    weights: HostWeights,
    settings: SessionSettings = {},
    tuning: OrtEngineTuning = {},
  ) {
    this.ort = loadOrt();
    this.settings = { ...settings, threads: settings.threads ?? defaultThreads(), executionProvider: settings.executionProvider ?? "cpu" };
    const threads = this.settings.threads!;
    this.device = `${this.settings.executionProvider} (${threads} thread${threads === 1 ? "" : "s"})`;
    ({ slots: this.slots, sizes: this.sizes } = parameterLayout(config));
    this.weights = this.zeros();
    this.decoding = new OrtDecoding(
      this.ort,
      config,
      this.settings,
      { bytes: (this.sizes.decayed + this.sizes.other) * 4, views: () => this.hostWeightViews(), feeds: () => this.paramFeeds() },
      tuning.decodeEmbedLimitBytes,
    );
    this.setWeights(weights);
  }

  private zeros(): Flat {
    return { decayed: new Float32Array(this.sizes.decayed), other: new Float32Array(this.sizes.other) };
  }

  private view(flat: Flat, slot: ParamSlot): Float32Array {
    return flat[slot.group].subarray(slot.offset, slot.offset + slot.size);
  }

  /** The session of a graph kind, built and opened on first use. */
  private session(kind: GraphKind): Promise<OrtSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      s = createSession(BUILDERS[kind](this.config).toBytes(), this.settings, kind !== "optimizer");
      // A failed build is not cached: the next call reports it again rather than a stale rejection.
      s.catch(() => this.sessions.delete(kind));
      this.sessions.set(kind, s);
    }
    return s;
  }

  private async run(kind: GraphKind, feeds: OrtFeeds): Promise<OrtOutputs> {
    const session = await this.session(kind);
    return (await session.run(feeds)) as unknown as OrtOutputs;
  }

  private f32(data: Float32Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor("float32", data, dims);
  }

  private paramFeeds(): OrtFeeds {
    const feeds: OrtFeeds = {};
    for (const slot of this.slots) feeds[slot.name] = this.f32(this.view(this.weights, slot), slot.shape);
    return feeds;
  }

  private batchFeeds(b: TokenBatch): OrtFeeds {
    // The graphs slice RoPE tables of max_position_embeddings rows: refuse longer input as TfLlama does.
    if (b.length > this.config.max_position_embeddings) throw new Error(`sequence of ${b.length} tokens is longer than max_position_embeddings ${this.config.max_position_embeddings}`);
    const dims = [b.batch, b.length];
    return {
      input_ids: new this.ort.Tensor("int32", b.inputs, dims),
      targets: new this.ort.Tensor("int32", b.targets, dims),
      mask: this.f32(b.mask, dims),
    };
  }

  private scalar(x: number): OrtTensor {
    return this.f32(Float32Array.of(x), []);
  }

  /** Adds a run's grad.<name> outputs to the accumulated gradients. */
  private accumulate(out: OrtOutputs): void {
    const first = !this.grads;
    this.grads ??= this.gradBuffer ??= this.zeros();
    for (const slot of this.slots) {
      const g = out[GraphNames.grad(slot.name)]!.data as Float32Array;
      const acc = this.view(this.grads, slot);
      if (first) acc.set(g);
      else for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (g[i] as number);
    }
  }

  /** How many decoding sessions were built so far (one per weight version that was decoded with): for tests. */
  get decodeSessionsBuilt(): number {
    return this.decoding.sessionsBuilt;
  }

  /** Copies of the gradients accumulated since the last optimizer step, by name (null when none): for parity tests. */
  accumulatedGradients(): HostWeights | null {
    const grads = this.grads;
    if (!grads) return null;
    return new Map(this.slots.map((slot) => [slot.name, { shape: slot.shape.slice(), data: this.view(grads, slot).slice() }]));
  }

  async sftBackward(batch: TokenBatch, scale: number): Promise<{ loss: number }> {
    const out = await this.run("sft", { ...this.paramFeeds(), ...this.batchFeeds(batch), scale: this.scalar(scale) });
    this.accumulate(out);
    return { loss: (out["loss"]!.data as Float32Array)[0]! };
  }

  async dpoBackward(chosen: TokenBatch, rejected: TokenBatch, refChosen: Float32Array, refRejected: Float32Array, beta: number, scale: number): Promise<DpoMetrics> {
    if (chosen.batch !== rejected.batch || refChosen.length !== chosen.batch || refRejected.length !== chosen.batch) {
      throw new Error(`DPO batch sizes differ: chosen ${chosen.batch}, rejected ${rejected.batch}, references ${refChosen.length} / ${refRejected.length}`);
    }
    const both = stackBatches(chosen, rejected, this.config.pad_token_id);
    const B = chosen.batch;
    const out = await this.run("dpo", {
      ...this.paramFeeds(),
      ...this.batchFeeds(both),
      ref_chosen: this.f32(refChosen, [B]),
      ref_rejected: this.f32(refRejected, [B]),
      beta: this.scalar(beta),
      scale: this.scalar(scale),
    });
    this.accumulate(out);
    const metric = (k: keyof typeof DPO_METRIC_OUTPUTS): number => (out[DPO_METRIC_OUTPUTS[k]]!.data as Float32Array)[0]!;
    return {
      loss: metric("loss"),
      "rewards/chosen": metric("rewards/chosen"),
      "rewards/rejected": metric("rewards/rejected"),
      "rewards/margins": metric("rewards/margins"),
      "rewards/accuracies": metric("rewards/accuracies"),
      "logps/chosen": metric("logps/chosen"),
      "logps/rejected": metric("logps/rejected"),
    };
  }

  async optimizerStep(lr: number, s: OptimizerSettings): Promise<{ gradNorm: number }> {
    const grads = this.grads;
    if (!grads) throw new Error("optimizerStep without accumulated gradients");
    this.m ??= this.zeros();
    this.v ??= this.zeros();
    const step = this.step + 1;
    const feeds: OrtFeeds = {};
    for (const g of GROUPS) {
      if (this.sizes[g] === 0) continue;
      const dims = [this.sizes[g]];
      feeds[OptimizerNames.param(g)] = this.f32(this.weights[g], dims);
      feeds[OptimizerNames.grad(g)] = this.f32(grads[g], dims);
      feeds[OptimizerNames.m(g)] = this.f32(this.m[g], dims);
      feeds[OptimizerNames.v(g)] = this.f32(this.v[g], dims);
    }
    // Host numbers rounded to float32 exactly where TfEngine's scalars are.
    const scalars = {
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
    for (const [k, x] of Object.entries(scalars)) feeds[k] = this.scalar(x);
    feeds["max_grad_norm"] = new this.ort.Tensor("float64", Float64Array.of(s.maxGradNorm), []);
    const out = await this.run("optimizer", feeds);
    const gradNorm = (out["grad_norm"]!.data as Float32Array)[0]!;
    this.grads = null;
    if (!Number.isFinite(gradNorm)) throw new Error(`gradient norm is ${gradNorm}: the step was not applied`);
    this.step = step;
    this.weightsChanged();
    for (const g of GROUPS) {
      if (this.sizes[g] === 0) continue;
      this.weights[g] = out[OptimizerNames.newParam(g)]!.data as Float32Array;
      this.m[g] = out[OptimizerNames.newM(g)]!.data as Float32Array;
      this.v[g] = out[OptimizerNames.newV(g)]!.data as Float32Array;
    }
    return { gradNorm };
  }

  resetOptimizer(): void {
    this.grads = null;
    this.m = null;
    this.v = null;
    this.step = 0;
  }

  /** Log-probability of every target token, [B, T] (padding included; multiply by the mask to use). */
  async tokenLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const out = await this.run("logprobs", { ...this.paramFeeds(), ...this.batchFeeds(batch) });
    return out["token_logps"]!.data as Float32Array;
  }

  async sequenceLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const out = await this.run("logprobs", { ...this.paramFeeds(), ...this.batchFeeds(batch) });
    return out["seq_logps"]!.data as Float32Array;
  }

  /** The weights by name as views of the flat buffers (no copies: for building a graph from them at once). */
  private hostWeightViews(): HostWeights {
    return new Map(this.slots.map((slot) => [slot.name, { shape: slot.shape, data: this.view(this.weights, slot) }]));
  }

  /** Decoding with a KV cache held on the host: see OrtDecoding. */
  startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    return this.decoding.start(prompts);
  }

  getWeights(): Promise<HostWeights> {
    const out: HostWeights = new Map();
    for (const slot of this.slots) out.set(slot.name, { shape: slot.shape.slice(), data: this.view(this.weights, slot).slice() });
    return Promise.resolve(out);
  }

  setWeights(weights: HostWeights): void {
    for (const slot of this.slots) {
      const w = weights.get(slot.name);
      if (!w) throw new Error(`missing parameter ${slot.name}`);
      if (w.data.length !== slot.size) throw new Error(`${slot.name} has ${w.data.length} values but the config needs [${slot.shape}]`);
    }
    // Copies: the caller keeps its arrays, and ours are replaced (never written in place) by optimizer steps.
    const next = this.zeros();
    for (const slot of this.slots) this.view(next, slot).set(weights.get(slot.name)!.data);
    this.weights = next;
    this.weightsChanged();
  }

  private weightsChanged(): void {
    this.decoding.weightsChanged();
  }

  dispose(): void {
    this.resetOptimizer();
    this.gradBuffer = null;
    this.decoding.dispose();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) void s.then((x) => x.release()).catch(() => undefined);
  }
}

/** Chosen rows then rejected rows, right-padded to a common length with mask 0: [2B, max(Tc, Tr)]. */
export function stackBatches(a: TokenBatch, b: TokenBatch, padId: number): TokenBatch {
  const L = Math.max(a.length, b.length);
  const rows = a.batch + b.batch;
  const inputs = new Int32Array(rows * L).fill(padId);
  const targets = new Int32Array(rows * L).fill(padId);
  const mask = new Float32Array(rows * L);
  const copy = (src: TokenBatch, rowOffset: number): void => {
    for (let r = 0; r < src.batch; r++) {
      const from = r * src.length;
      const to = (rowOffset + r) * L;
      inputs.set(src.inputs.subarray(from, from + src.length), to);
      targets.set(src.targets.subarray(from, from + src.length), to);
      mask.set(src.mask.subarray(from, from + src.length), to);
    }
  };
  copy(a, 0);
  copy(b, a.batch);
  return { batch: rows, length: L, inputs, targets, mask, tokens: a.tokens + b.tokens, truncated: a.truncated + b.truncated };
}
