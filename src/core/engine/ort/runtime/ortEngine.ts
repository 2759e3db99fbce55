import type { ModelConfig } from "../../../model/config";
import type { HostWeights } from "../../../model/weights";
import type { ComputeEngine, DecodeSession, DpoMetrics, OptimizerSettings, TokenBatch } from "../../computeEngine";
import { DPO_METRIC_OUTPUTS, dpoGraph, logProbGraph, sftGraph, type GraphOptions } from "../llama/llamaGraphs";
import type { RowBlocks } from "../llama/rowBlocks";
import { VOCAB_CHUNK_ROWS } from "../llama/vocabularyChunks";
import { OrtDecoding } from "./ortDecoding";
import { createSession, releaseSessions, defaultThreads, loadOrt, type Ort, type OrtFeeds, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";
import { DeviceState } from "./deviceState";
import { deviceOutputs, meteredRun, slotsOf, splitSlots, type ModelState, type OrtResults, type Slot, type TransferCounts } from "./modelState";
import { HostState } from "./hostState";

type GraphKind = "sft" | "dpo" | "logprobs";

const BUILDERS: Record<GraphKind, (c: ModelConfig, o: GraphOptions) => { toBytes(): Uint8Array; outputNames(): string[] }> = {
  sft: sftGraph,
  dpo: dpoGraph,
  logprobs: logProbGraph,
};

/**
 * Rows of RoPE table the graphs start with (or max_position_embeddings, if smaller): enough for the method's
 * sequences (640 tokens for a pretrained model, a prompt and 300 new tokens when sampling); a longer sequence
 * grows the tables, rebuilding the sessions once.
 */
export const ROPE_ROWS_START = 1024;

/** Choices the engine makes for itself, open to tests and benchmarks. */
export interface OrtEngineTuning {
  /** Rows of RoPE table the graphs start with (ROPE_ROWS_START). */
  ropeRows?: number;
  /** Largest parameter size, in bytes, whose weights the decoding graph embeds; above, a weights file (ortDecoding's DECODE_EMBED_LIMIT_BYTES). */
  decodeEmbedLimitBytes?: number;
  /** "fed": decoding takes the weights as inputs at every step, as it does when they are on a device. */
  decodeWeights?: "fed";
  /** webgpu: the largest tensor, in bytes, one GPU buffer holds (WEBGPU_BUFFER_LIMIT_BYTES); larger parameters go in row blocks. */
  bufferLimitBytes?: number;
  /**
   * The engine takes the constructor's weight arrays as its own instead of copying them (each that is a whole
   * buffer): the caller must not read or write them afterwards. Saves a copy of the model while it is loaded.
   */
  adoptWeights?: boolean;
}

/**
 * The fast engine: the model's forward and backward as ONNX graphs (src/core/engine/ort) run by the stock
 * onnxruntime-node, with the model's state (weights, accumulated gradients, Adam moments) kept where the
 * provider computes (runtime/modelState.ts): host arrays read in place on the CPU, gpu-buffer tensors on webgpu. HostWeights
 * go in and out only through setWeights / getWeights, so checkpoints are TfEngine's and a run can switch engines
 * between stages. One session per graph kind serves every weight value and (with symbolic batch and length)
 * every shape. Decoding on the CPU embeds the weights in its graph and is rebuilt when they change
 * (ortDecoding.ts); on a device it feeds them from the device.
 *
 * `transfers` counts the bytes moved between the host and the provider (meteredRun).
 */
export class OrtEngine implements ComputeEngine {
  readonly name = "onnxruntime";
  readonly device: string;
  /** Bytes moved so far: see TransferCounts. */
  readonly transfers: TransferCounts = { toDevice: 0, toHost: 0, withinHost: 0 };
  private readonly ort: Ort;
  private readonly slots: Slot[];
  private readonly state: ModelState;
  /** Parameters the device holds in row blocks (webgpu, larger than one buffer): the graphs take them so. */
  private readonly blocks: RowBlocks | undefined;
  private step = 0;
  private readonly decoding: OrtDecoding;
  private readonly sessions = new Map<GraphKind, Promise<OrtSession>>();
  private readonly settings: SessionSettings;
  /** Rows of the RoPE tables in the graphs: the longest sequence they serve (grown by needPositions). */
  private ropeRows: number;

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
    this.ropeRows = Math.min(config.max_position_embeddings, tuning.ropeRows ?? ROPE_ROWS_START);
    this.slots = slotsOf(config);
    if (this.settings.executionProvider === "webgpu") {
      const split = splitSlots(this.slots, tuning.bufferLimitBytes ?? WEBGPU_BUFFER_LIMIT_BYTES);
      if (split.blocks.size > 0) this.blocks = split.blocks;
      this.state = new DeviceState(this.ort, this.slots, split.slots, this.settings, this.transfers);
    } else this.state = new HostState(this.ort, this.slots);
    const state = this.state;
    this.decoding = new OrtDecoding(
      this.ort,
      config,
      this.settings,
      {
        bytes: this.slots.reduce((n, s) => n + s.size * 4, 0),
        views: () => (state.deviceIsHost ? state.hostViews() : null),
        hold: () => state.holdParams(),
        park: () => (state instanceof HostState ? state.park() : Promise.resolve()),
        onDevice: !state.deviceIsHost,
      },
      this.transfers,
      {
        ...(tuning.decodeEmbedLimitBytes !== undefined ? { embedLimitBytes: tuning.decodeEmbedLimitBytes } : {}),
        ...(tuning.decodeWeights ? { force: tuning.decodeWeights } : {}),
        ...(this.blocks ? { blocks: this.blocks } : {}),
        ropeRows: () => this.ropeRows,
      },
    );
    this.setWeights(weights, tuning.adoptWeights ?? false);
  }

  /** The session of a graph kind, built and opened on first use. */
  private session(kind: GraphKind): Promise<OrtSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      const training = kind !== "logprobs";
      // On a device the vocabulary always goes in chunks: whole logits [B*T, V] pass one GPU buffer's 1 GiB from
      // about 5,000 tokens at SmolLM2's 49,152 rows; a [B*T, 16,384] chunk only past 16,384 tokens.
      const device = this.state.deviceIsHost ? {} : { vocabChunkRows: VOCAB_CHUNK_ROWS };
      const graph = BUILDERS[kind](this.config, { accumulateGradients: training && this.state.accumulatesInGraph, ...device, ...(this.blocks ? { blocks: this.blocks } : {}), ropeRows: this.ropeRows });
      s = createSession(graph.toBytes(), this.settings, {
        memoryPattern: false,
        ...(this.state.deviceIsHost ? {} : { outputLocations: deviceOutputs(graph.outputNames()) }),
      });
      // A failed build is not cached: the next call reports it again rather than a stale rejection.
      s.catch(() => this.sessions.delete(kind));
      this.sessions.set(kind, s);
    }
    return s;
  }

  /** A run with the weights (and, training, the gradients) from the state and `host` data fed from here. */
  private async run(kind: GraphKind, host: OrtFeeds, fetches?: readonly string[]): Promise<OrtResults> {
    const session = await this.session(kind);
    await this.state.prepare();
    const state = kind === "logprobs" ? this.state.paramFeeds() : { ...this.state.paramFeeds(), ...this.state.gradientFeeds() };
    // The state's home is not the provider's on cuda (host arrays fed to the GPU at every run): that counts too.
    const out = await meteredRun(session, this.transfers, this.settings.executionProvider === "cpu", state, host, fetches);
    if (kind !== "logprobs") this.state.takeGradients(out);
    return out;
  }

  private f32(data: Float32Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor("float32", data, dims);
  }

  /**
   * The graphs hold RoPE tables of `ropeRows` positions: a longer sequence grows them (doubling, at most to
   * max_position_embeddings) and the sessions built with the smaller ones go, to be built again on use. Longer
   * than max_position_embeddings is refused, as TfLlama does.
   */
  private needPositions(n: number): void {
    const max = this.config.max_position_embeddings;
    if (n > max) throw new Error(`sequence of ${n} tokens is longer than max_position_embeddings ${max}`);
    if (n <= this.ropeRows) return;
    let rows = this.ropeRows;
    while (rows < n) rows *= 2;
    this.ropeRows = Math.min(max, rows);
    releaseSessions(this.sessions);
    this.decoding.tablesChanged();
  }

  /** Rows of the RoPE tables the graphs hold now: for tests. */
  get ropeTableRows(): number {
    return this.ropeRows;
  }

  private batchFeeds(b: TokenBatch): OrtFeeds {
    this.needPositions(b.length);
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

  /** The parameters kept in row blocks, with their blocks' rows (webgpu, larger than one buffer): for tests. */
  get rowBlocks(): RowBlocks {
    return this.blocks ?? new Map();
  }

  /** How many decoding sessions were built so far (one per weight version that was decoded with): for tests. */
  get decodeSessionsBuilt(): number {
    return this.decoding.sessionsBuilt;
  }

  /** Copies of the gradients accumulated since the last optimizer step, by name (null when none): for parity tests. */
  accumulatedGradients(): Promise<HostWeights | null> {
    return this.state.accumulatedGradients();
  }

  async sftBackward(batch: TokenBatch, scale: number): Promise<{ loss: number }> {
    const out = await this.run("sft", { ...this.batchFeeds(batch), scale: this.scalar(scale) });
    return { loss: (out["loss"]!.data as Float32Array)[0]! };
  }

  async dpoBackward(chosen: TokenBatch, rejected: TokenBatch, refChosen: Float32Array, refRejected: Float32Array, beta: number, scale: number): Promise<DpoMetrics> {
    if (chosen.batch !== rejected.batch || refChosen.length !== chosen.batch || refRejected.length !== chosen.batch) {
      throw new Error(`DPO batch sizes differ: chosen ${chosen.batch}, rejected ${rejected.batch}, references ${refChosen.length} / ${refRejected.length}`);
    }
    const both = stackBatches(chosen, rejected, this.config.pad_token_id);
    const B = chosen.batch;
    const out = await this.run("dpo", {
      ...this.batchFeeds(both),
      ref_chosen: this.f32(refChosen, [B]),
      ref_rejected: this.f32(refRejected, [B]),
      beta: this.scalar(beta),
      scale: this.scalar(scale),
    });
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
    if (!this.state.hasGradients) throw new Error("optimizerStep without accumulated gradients");
    const step = this.step + 1;
    // Weights change even when the step is refused (the state may have been partly replaced): stale decoders go.
    this.decoding.weightsChanged();
    const gradNorm = await this.state.optimizerStep(step, lr, s);
    this.step = step;
    return { gradNorm };
  }

  resetOptimizer(): void {
    this.state.resetOptimizer();
    this.step = 0;
  }

  /** Log-probability of every target token, [B, T] (padding included; multiply by the mask to use). */
  async tokenLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const out = await this.run("logprobs", this.batchFeeds(batch), ["token_logps"]);
    return out["token_logps"]!.data as Float32Array;
  }

  async sequenceLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const out = await this.run("logprobs", this.batchFeeds(batch), ["seq_logps"]);
    return out["seq_logps"]!.data as Float32Array;
  }

  /** Decoding with a KV cache held on the host: see OrtDecoding. */
  async startDecoding(prompts: readonly number[][], maxNewTokens?: number): Promise<{ session: DecodeSession; logits: Float32Array }> {
    // Positions the session may reach: the longest prompt and the new tokens (without a bound, every position).
    const longest = Math.max(0, ...prompts.map((p) => p.length));
    this.needPositions(Math.min(this.config.max_position_embeddings, maxNewTokens === undefined ? Infinity : longest + maxNewTokens));
    await this.state.prepare();
    return this.decoding.start(prompts, maxNewTokens === undefined ? 0 : longest + maxNewTokens);
  }

  /** Whether the host copy of the weights is parked on disk while a decoder holds its own (HostState.park). */
  get weightsParked(): boolean {
    return this.state instanceof HostState && this.state.isParked;
  }

  getWeights(): Promise<HostWeights> {
    return this.state.getWeights();
  }

  setWeights(weights: HostWeights, adopt = false): void {
    for (const slot of this.slots) {
      const w = weights.get(slot.name);
      if (!w) throw new Error(`missing parameter ${slot.name}`);
      if (w.data.length !== slot.size) throw new Error(`${slot.name} has ${w.data.length} values but the config needs [${slot.shape}]`);
    }
    this.state.setWeights(weights, adopt);
    this.decoding.weightsChanged();
  }

  dispose(): void {
    this.decoding.dispose();
    this.state.dispose();
    releaseSessions(this.sessions);
  }
}

/**
 * WebGPU's limit on one buffer (maxBufferSize, 1 GiB on common adapters): a parameter larger than this (Qwen3-1.7B's
 * embedding, 151,936 × 2,048 floats) is kept in row blocks (splitSlots).
 */
export const WEBGPU_BUFFER_LIMIT_BYTES = 1024 ** 3;

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
