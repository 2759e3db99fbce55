import { headDim, type ModelConfig } from "../model/config";
import type { HostWeights } from "../model/weights";
import type { TokenBatch } from "../train/batching";
import type { DpoMetrics } from "../train/dpoLoss";
import type { ComputeEngine, DecodeSession, OptimizerSettings } from "./computeEngine";
import { DPO_METRIC_OUTPUTS, GraphNames, OptimizerNames, decodeGraph, dpoGraph, logProbGraph, optimizerGraph, parameterLayout, sftGraph, type ParamGroup, type ParamSlot } from "../onnx/llamaGraphs";
import { createSession, defaultThreads, loadOrt, type Ort, type OrtSession, type OrtTensor, type SessionSettings } from "../onnx/ortRuntime";

type GraphKind = "sft" | "dpo" | "optimizer" | "logprobs" | "decode";

const BUILDERS: Record<GraphKind, (c: ModelConfig) => { toBytes(): Uint8Array }> = {
  sft: sftGraph,
  dpo: dpoGraph,
  optimizer: optimizerGraph,
  logprobs: logProbGraph,
  decode: decodeGraph,
};

type Feeds = Record<string, OrtTensor>;
/** One flat Float32Array per parameter group (see parameterLayout). */
type Flat = Record<ParamGroup, Float32Array>;
const GROUPS: readonly ParamGroup[] = ["decayed", "other"];
type Outputs = Record<string, { data: unknown; dims: readonly number[] }>;

/**
 * The fast engine: the model's forward, backward and AdamW step as ONNX graphs (src/core/onnx) run by the
 * stock onnxruntime-node. Weights, accumulated gradients and Adam moments live on the host in flat
 * Float32Arrays (two groups, see parameterLayout), fed to each run as per-parameter views under their Hugging
 * Face names: HostWeights in and out, so checkpoints are TfEngine's and a run can switch engines between
 * stages. Feeding costs a few milliseconds of a step; in exchange one session per graph kind serves every
 * weight value and (with symbolic batch and length) every shape.
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
  private readonly sessions = new Map<GraphKind, Promise<OrtSession>>();
  private readonly settings: SessionSettings;

  constructor(
    readonly config: ModelConfig,
    weights: HostWeights,
    settings: SessionSettings = {},
  ) {
    this.ort = loadOrt();
    this.settings = { ...settings, threads: settings.threads ?? defaultThreads(), executionProvider: settings.executionProvider ?? "cpu" };
    const threads = this.settings.threads!;
    this.device = `${this.settings.executionProvider} (${threads} thread${threads === 1 ? "" : "s"})`;
    ({ slots: this.slots, sizes: this.sizes } = parameterLayout(config));
    this.weights = this.zeros();
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

  private async run(kind: GraphKind, feeds: Feeds): Promise<Outputs> {
    const session = await this.session(kind);
    return (await session.run(feeds)) as unknown as Outputs;
  }

  private f32(data: Float32Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor("float32", data, dims);
  }

  private paramFeeds(): Feeds {
    const feeds: Feeds = {};
    for (const slot of this.slots) feeds[slot.name] = this.f32(this.view(this.weights, slot), slot.shape);
    return feeds;
  }

  private batchFeeds(b: TokenBatch): Feeds {
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
  private accumulate(out: Outputs): void {
    const first = !this.grads;
    this.grads ??= this.gradBuffer ??= this.zeros();
    for (const slot of this.slots) {
      const g = out[GraphNames.grad(slot.name)]!.data as Float32Array;
      const acc = this.view(this.grads, slot);
      if (first) acc.set(g);
      else for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (g[i] as number);
    }
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
    const feeds: Feeds = {};
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

  async startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const c = this.config;
    const B = prompts.length;
    if (B === 0) throw new Error("startDecoding needs at least one prompt");
    const T = Math.max(...prompts.map((p) => p.length));
    const KV = c.num_key_value_heads;
    const hd = headDim(c);
    // Left padding, so every row's next token sits at the same column; positions count real tokens only.
    const ids = new Int32Array(B * T).fill(c.pad_token_id);
    const pos = new Int32Array(B * T);
    const valid: boolean[][] = [];
    const nextPos: number[] = [];
    prompts.forEach((p, b) => {
      const pad = T - p.length;
      valid.push(Array.from({ length: T }, (_, j) => j >= pad));
      for (let j = 0; j < p.length; j++) {
        ids[b * T + pad + j] = p[j] as number;
        pos[b * T + pad + j] = j;
      }
      nextPos.push(p.length);
    });
    const empty = new Float32Array(0);
    let cache: Feeds = {};
    for (let l = 0; l < c.num_hidden_layers; l++) {
      cache[GraphNames.pastKey(l)] = this.f32(empty, [B, KV, 0, hd]);
      cache[GraphNames.pastValue(l)] = this.f32(empty, [B, KV, 0, hd]);
    }
    let past = 0;
    let disposed = false;
    const run = async (tokens: Int32Array, positions: Int32Array, n: number): Promise<Float32Array> => {
      if (disposed) throw new Error("decode session was disposed");
      const Tk = past + n;
      if (Tk > c.max_position_embeddings) throw new Error(`sequence of ${Tk} tokens is longer than max_position_embeddings ${c.max_position_embeddings}`);
      const out = await this.run("decode", {
        ...this.paramFeeds(),
        ...cache,
        input_ids: new this.ort.Tensor("int32", tokens, [B, n]),
        positions: new this.ort.Tensor("int32", positions, [B, n]),
        attn_bias: this.f32(paddedCausalBiasData(valid, n, past), [B, 1, n, Tk]),
      });
      const next: Feeds = {};
      for (let l = 0; l < c.num_hidden_layers; l++) {
        next[GraphNames.pastKey(l)] = this.f32(out[GraphNames.presentKey(l)]!.data as Float32Array, [B, KV, Tk, hd]);
        next[GraphNames.pastValue(l)] = this.f32(out[GraphNames.presentValue(l)]!.data as Float32Array, [B, KV, Tk, hd]);
      }
      cache = next;
      past = Tk;
      return out["logits"]!.data as Float32Array;
    };
    const first = await run(ids, pos, T);
    const session: DecodeSession = {
      step: async (tokens) => {
        if (tokens.length !== B) throw new Error(`step needs ${B} tokens, got ${tokens.length}`);
        for (const row of valid) row.push(true);
        const positions = Int32Array.from(nextPos);
        for (let b = 0; b < B; b++) nextPos[b] = (nextPos[b] as number) + 1;
        return run(Int32Array.from(tokens), positions, 1);
      },
      dispose: () => {
        disposed = true;
        cache = {};
      },
    };
    return { session, logits: first };
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
  }

  dispose(): void {
    this.resetOptimizer();
    this.gradBuffer = null;
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

/** The data of TfLlama's paddedCausalBias [B, 1, T, past + T]: −1e9 on padding keys and future keys. */
function paddedCausalBiasData(keyValid: boolean[][], T: number, past: number): Float32Array {
  const B = keyValid.length;
  const Tk = past + T;
  const data = new Float32Array(B * T * Tk);
  for (let b = 0; b < B; b++) {
    const valid = keyValid[b] as boolean[];
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < Tk; j++) {
        if (j > past + t || !valid[j]) data[(b * T + t) * Tk + j] = -1e9;
      }
    }
  }
  return data;
}
