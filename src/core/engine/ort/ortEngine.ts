import { headDim, type ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import { leftPadPrompts } from "../../model/promptFormat";
import type { ComputeEngine, DecodeSession, DpoMetrics, OptimizerSettings, TokenBatch } from "../computeEngine";
import { DPO_METRIC_OUTPUTS, GraphNames, OptimizerNames, bufferedDecodeGraph, dpoGraph, logProbGraph, optimizerGraph, parameterLayout, sftGraph, type ParamGroup, type ParamSlot } from "./llamaGraphs";
import { createSession, defaultThreads, loadOrt, type Ort, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";

type GraphKind = "sft" | "dpo" | "optimizer" | "logprobs";

const BUILDERS: Record<GraphKind, (c: ModelConfig) => { toBytes(): Uint8Array }> = {
  sft: sftGraph,
  dpo: dpoGraph,
  optimizer: optimizerGraph,
  logprobs: logProbGraph,
};

/**
 * Decoding embeds the weights in its graph up to this many bytes of parameters (far below protobuf's 2 GB cap on
 * a model, and the copy ORT keeps stays small beside the host's); larger models feed them every step.
 */
export const DECODE_EMBED_LIMIT_BYTES = 512 * 1024 * 1024;

/** Choices the engine makes for itself, open to tests and benchmarks. */
export interface OrtEngineTuning {
  /** Largest parameter size, in bytes, whose weights the decoding graph embeds (DECODE_EMBED_LIMIT_BYTES). */
  decodeEmbedLimitBytes?: number;
}

/** The KV cache grows in steps of this many positions (a step's attention reads at most this many empty slots). */
export const KV_BUCKET = 32;

/** A decoding session and the weights it was built with; retired when they change, released when unused. */
interface Decoder {
  version: number;
  session: Promise<OrtSession>;
  /** false: the weights are fed every run (a model too large to embed). */
  embedded: boolean;
  users: number;
  retired: boolean;
}

type Feeds = Record<string, OrtTensor>;
/** One flat Float32Array per parameter group (see parameterLayout). */
type Flat = Record<ParamGroup, Float32Array>;
const GROUPS: readonly ParamGroup[] = ["decayed", "other"];
type Outputs = Record<string, { data: unknown; dims: readonly number[] }>;

/**
 * The fast engine: the model's forward, backward and AdamW step as ONNX graphs (src/core/engine/ort) run by the
 * stock onnxruntime-node. Weights, accumulated gradients and Adam moments live on the host in flat
 * Float32Arrays (two groups, see parameterLayout), fed to each run as per-parameter views under their Hugging
 * Face names: HostWeights in and out, so checkpoints are TfEngine's and a run can switch engines between
 * stages. Feeding costs a few milliseconds of a step; in exchange one session per graph kind serves every
 * weight value and (with symbolic batch and length) every shape. Decoding is the exception: its steps are short
 * enough that the feeding shows, so its session embeds the weights and is rebuilt when they change
 * (acquireDecoder).
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
  /** Bumped whenever the weights change: a decoder built with other weights is stale. */
  private weightsVersion = 0;
  private decoder: Decoder | null = null;
  private decodersBuilt = 0;
  private readonly sessions = new Map<GraphKind, Promise<OrtSession>>();
  private readonly settings: SessionSettings;

  constructor(
    readonly config: ModelConfig,
    weights: HostWeights,
    settings: SessionSettings = {},
    private readonly tuning: OrtEngineTuning = {},
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

  /** How many decoding sessions were built so far (one per weight version that was decoded with): for tests. */
  get decodeSessionsBuilt(): number {
    return this.decodersBuilt;
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

  /**
   * The decoding session for the current weights: built once per weight version and shared by every
   * startDecoding until the weights change (sampling decodes chunk after chunk of prompts with the same weights).
   * The weights are embedded as initializers, so ORT pre-packs the Gemm weights once and a step feeds none. A
   * model too large to embed gets one session that is fed the weights and serves every version.
   *
   * It runs on the engine's threads, as training does. Measured on 2 cores: on a quiet machine 2 threads beat 1
   * at batch 64 (0.8M parameters: +15–20%) and at every batch for 12.5M parameters (+50–75%), and were within
   * noise of 1 at batch 1–8 of the 0.8M model; with another process busy on one core, 2 spinning threads fell to
   * about half of 1 thread's tokens/s. Untried: the cores could each decode part of a large batch in a worker
   * thread with its own one-thread session (emulated: +25–35% at batch 64 on 2 cores), at the cost of a worker
   * entry point, the weights shipped to each worker per version, and logits gathered every step.
   */
  private acquireDecoder(): Decoder {
    const current = this.decoder;
    if (current && (current.version === this.weightsVersion || !current.embedded)) {
      current.users++;
      return current;
    }
    this.retireDecoder();
    this.decodersBuilt++;
    const embedded = (this.sizes.decayed + this.sizes.other) * 4 <= (this.tuning.decodeEmbedLimitBytes ?? DECODE_EMBED_LIMIT_BYTES);
    const graph = embedded ? bufferedDecodeGraph(this.config, { weights: this.hostWeightViews() }) : bufferedDecodeGraph(this.config);
    const d: Decoder = { version: this.weightsVersion, session: createSession(graph.toBytes(), this.settings), embedded, users: 1, retired: false };
    // A failed build is not kept: the next startDecoding reports it again rather than a stale rejection.
    d.session.catch(() => {
      if (this.decoder === d) this.decoder = null;
    });
    this.decoder = d;
    return d;
  }

  private releaseDecoder(d: Decoder): void {
    d.users--;
    if (d.retired && d.users === 0) closeDecoder(d);
  }

  /** Drops the current decoder; its session is released now, or when the last decode session using it ends. */
  private retireDecoder(): void {
    const d = this.decoder;
    this.decoder = null;
    if (!d) return;
    d.retired = true;
    if (d.users === 0) closeDecoder(d);
  }

  /** The weights by name as views of the flat buffers (no copies: for building a graph from them at once). */
  private hostWeightViews(): HostWeights {
    return new Map(this.slots.map((slot) => [slot.name, { shape: slot.shape, data: this.view(this.weights, slot) }]));
  }

  /**
   * Decoding with a KV cache held here, not in ORT (bufferedDecodeGraph): per layer a [B, KV, C, hd] key buffer
   * and value buffer, fed to every step as they are; a step returns only the new keys and values, which are
   * written into the next free slot. The capacity C grows by KV_BUCKET positions when the buffers fill, the only
   * time they are copied. Left padding keeps every row's next token at the same slot; the bias hides padding and
   * empty slots.
   */
  async startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const c = this.config;
    const B = prompts.length;
    if (B === 0) throw new Error("startDecoding needs at least one prompt");
    const { width: T, ids, positions: pos, valid, nextPositions: nextPos } = leftPadPrompts(prompts, c.pad_token_id);
    const KV = c.num_key_value_heads;
    const hd = headDim(c);
    const L = c.num_hidden_layers;
    const decoder = this.acquireDecoder();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.releaseDecoder(decoder);
    };
    // Fed every run when the decoder does not embed them: the weights as they were when decoding started.
    const weightFeeds = decoder.embedded ? {} : this.paramFeeds();
    const rowSize = hd; // floats per position of one (row, kv head)
    let capacity = 0;
    let keys: Float32Array[] = Array.from({ length: L }, () => new Float32Array(0));
    let values: Float32Array[] = Array.from({ length: L }, () => new Float32Array(0));
    let past = 0;
    let disposed = false;
    /** Room for `need` positions: new buffers of the next bucket's capacity, the filled slots copied. */
    const grow = (need: number): void => {
      const next = Math.min(Math.ceil(need / KV_BUCKET) * KV_BUCKET, Math.max(need, c.max_position_embeddings));
      const move = (old: Float32Array): Float32Array => {
        const fresh = new Float32Array(B * KV * next * rowSize);
        for (let r = 0; r < B * KV; r++) fresh.set(old.subarray(r * capacity * rowSize, (r * capacity + past) * rowSize), r * next * rowSize);
        return fresh;
      };
      keys = keys.map(move);
      values = values.map(move);
      capacity = next;
    };
    /** Writes a run's new keys / values [B, KV, n, hd] into slots past … past+n-1. */
    const store = (buffers: Float32Array[], out: Outputs, name: (l: number) => string, n: number): void => {
      for (let l = 0; l < L; l++) {
        const src = out[name(l)]!.data as Float32Array;
        const dst = buffers[l]!;
        for (let r = 0; r < B * KV; r++) dst.set(src.subarray(r * n * rowSize, (r + 1) * n * rowSize), (r * capacity + past) * rowSize);
      }
    };
    const run = async (tokens: Int32Array, positions: Int32Array, n: number): Promise<Float32Array> => {
      if (disposed) throw new Error("decode session was disposed");
      if (past + n > c.max_position_embeddings) throw new Error(`sequence of ${past + n} tokens is longer than max_position_embeddings ${c.max_position_embeddings}`);
      const feeds: Feeds = {
        ...weightFeeds,
        input_ids: new this.ort.Tensor("int32", tokens, [B, n]),
        positions: new this.ort.Tensor("int32", positions, [B, n]),
        attn_bias: this.f32(bufferedBiasData(valid, n, past, capacity), [B, 1, n, capacity + n]),
      };
      for (let l = 0; l < L; l++) {
        feeds[GraphNames.keyCache(l)] = this.f32(keys[l]!, [B, KV, capacity, hd]);
        feeds[GraphNames.valueCache(l)] = this.f32(values[l]!, [B, KV, capacity, hd]);
      }
      const out = (await (await decoder.session).run(feeds)) as unknown as Outputs;
      // Disposed while running: the buffers are gone and nobody wants the result.
      if (disposed) throw new Error("decode session was disposed");
      if (past + n > capacity) grow(past + n);
      store(keys, out, GraphNames.newKey, n);
      store(values, out, GraphNames.newValue, n);
      past += n;
      return out["logits"]!.data as Float32Array;
    };
    // Never an empty cache: a zero-sized MatMul crashes the WebGPU provider. The prompt pass attends to the
    // empty slots of a first bucket, masked, which the prompt and the first new tokens then fill.
    grow(T + 1);
    let first: Float32Array;
    try {
      first = await run(ids, pos, T);
    } catch (e) {
      release();
      throw e;
    }
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
        keys = [];
        values = [];
        release();
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
    this.weightsChanged();
  }

  /** A decoder built with the old weights is stale: released now (or when its last decode ends), not kept through training. */
  private weightsChanged(): void {
    this.weightsVersion++;
    if (this.decoder?.embedded) this.retireDecoder();
  }

  dispose(): void {
    this.resetOptimizer();
    this.gradBuffer = null;
    this.retireDecoder();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) void s.then((x) => x.release()).catch(() => undefined);
  }
}

function closeDecoder(d: Decoder): void {
  void d.session.then((s) => s.release()).catch(() => undefined);
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

/**
 * The attention bias of bufferedDecodeGraph, [B, 1, T, C + T]: TfLlama's paddedCausalBias (−1e9 on padding and
 * future keys) laid out as the cache's C slots, of which the first `past` are filled, then the T new tokens.
 */
export function bufferedBiasData(keyValid: readonly (readonly boolean[])[], T: number, past: number, capacity: number): Float32Array {
  const B = keyValid.length;
  const width = capacity + T;
  const data = new Float32Array(B * T * width).fill(-1e9);
  for (let b = 0; b < B; b++) {
    const valid = keyValid[b] as readonly boolean[];
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * width;
      for (let j = 0; j < past; j++) if (valid[j]) data[row + j] = 0;
      for (let u = 0; u <= t; u++) if (valid[past + u]) data[row + capacity + u] = 0;
    }
  }
  return data;
}
