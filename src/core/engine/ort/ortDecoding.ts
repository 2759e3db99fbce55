/**
 * Decoding on ONNX Runtime with a KV cache held on the host (bufferedDecodeGraph): the sessions, one per weight
 * version while the weights are embedded, and the DecodeSession that feeds the cache to each step.
 */
import { headDim } from "../../model/architecture";
import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import { leftPadPrompts } from "../../model/promptFormat";
import type { DecodeSession } from "../computeEngine";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GraphBuilder } from "./graphBuilder";
import { writeModelFiles } from "./modelFiles";
import { GraphNames, bufferedDecodeGraph } from "./llamaGraphs";
import type { RowBlocks } from "./rowBlocks";
import { createSession, type Ort, type OrtFeeds, type OrtOutputs, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";

/**
 * Decoding embeds the weights in its graph's bytes up to this many bytes of parameters (far below protobuf's 2 GB
 * cap on a model); larger models' weights go to a file beside the graph (ONNX external data) that the session
 * loads once. Either way ORT holds them as initializers and pre-packs the matrix products' weights, which a
 * graph fed its weights at every step cannot do.
 */
export const DECODE_EMBED_LIMIT_BYTES = 512 * 1024 * 1024;

/**
 * How a decoder gets the weights: in its graph's bytes, in a weights file loaded with the graph, or fed as inputs
 * at every step (weights on a device, where the feeds are the device's own tensors and nothing moves).
 */
export type DecoderWeightsMode = "embedded" | "file" | "fed";

/** The KV cache grows in steps of this many positions (a step's attention reads at most this many empty slots). */
export const KV_BUCKET = 32;

/** A decoding session and the weights it was built with; retired when they change, released when unused. */
interface Decoder {
  version: number;
  session: Promise<OrtSession>;
  mode: DecoderWeightsMode;
  users: number;
  retired: boolean;
}

/** The engine's weights as decoding reads them. */
export interface DecoderWeights {
  /** Bytes of all parameters: whether the decoding graph may embed them. */
  readonly bytes: number;
  /** The current weights by name as views (no copies: for building a graph from them at once); null: not on the host. */
  views(): HostWeights | null;
  /** The current weights as feeds, for a decoding graph that takes them as inputs. */
  feeds(): OrtFeeds;
}

/** OrtEngine's decoding: the decoder built for the current weights, and decode sessions that share it. */
export class OrtDecoding {
  private decoder: Decoder | null = null;
  /** Bumped whenever the weights change: a decoder built with other weights is stale. */
  private weightsVersion = 0;
  private built = 0;

  constructor(
    private readonly ort: Ort,
    private readonly config: ModelConfig,
    private readonly settings: SessionSettings,
    private readonly weights: DecoderWeights,
    /** Largest parameter size, in bytes, whose weights the decoding graph embeds; above, a weights file. */
    private readonly embedLimitBytes: number = DECODE_EMBED_LIMIT_BYTES,
    /** "fed": never build the weights in (tests; the state on a device does so anyway). */
    private readonly force?: "fed",
    /** Fed weights in row blocks (a device's tables larger than one buffer): the graph takes them so. */
    private readonly blocks?: RowBlocks,
  ) {}

  /** How many decoding sessions were built so far (one per weight version that was decoded with): for tests. */
  get sessionsBuilt(): number {
    return this.built;
  }

  /** A decoder built with the old weights is stale: released now (or when its last decode ends), not kept through training. */
  weightsChanged(): void {
    this.weightsVersion++;
    if (this.decoder && this.decoder.mode !== "fed") this.retire();
  }

  private f32(data: Float32Array, dims: readonly number[]): OrtTensor {
    return new this.ort.Tensor("float32", data, dims);
  }

  /**
   * The decoding session for the current weights: built once per weight version and shared by every
   * start() until the weights change (sampling decodes chunk after chunk of prompts with the same weights).
   * The weights are initializers (embedded, or in a weights file for a large model), so ORT pre-packs the Gemm
   * weights once and a step feeds none. Weights that are not on the host get one session that is fed them and
   * serves every version.
   *
   * It runs on the engine's threads, as training does. Measured on 2 cores: on a quiet machine 2 threads beat 1
   * at batch 64 (0.8M parameters: +15–20%) and at every batch for 12.5M parameters (+50–75%), and were within
   * noise of 1 at batch 1–8 of the 0.8M model; with another process busy on one core, 2 spinning threads fell to
   * about half of 1 thread's tokens/s. Untried: the cores could each decode part of a large batch in a worker
   * thread with its own one-thread session (emulated: +25–35% at batch 64 on 2 cores), at the cost of a worker
   * entry point, the weights shipped to each worker per version, and logits gathered every step.
   */
  private acquire(): Decoder {
    const current = this.decoder;
    if (current && (current.version === this.weightsVersion || current.mode === "fed")) {
      current.users++;
      return current;
    }
    this.retire();
    this.built++;
    const views = this.force === "fed" ? null : this.weights.views();
    const mode: DecoderWeightsMode = !views ? "fed" : this.weights.bytes <= this.embedLimitBytes ? "embedded" : "file";
    const graph = views ? bufferedDecodeGraph(this.config, { weights: views }) : bufferedDecodeGraph(this.config, this.blocks ? { blocks: this.blocks } : {});
    const session = mode === "file" ? sessionFromFiles(graph, this.settings) : createSession(graph.toBytes(), this.settings);
    const d: Decoder = { version: this.weightsVersion, session, mode, users: 1, retired: false };
    // A failed build is not kept: the next start() reports it again rather than a stale rejection.
    d.session.catch(() => {
      if (this.decoder === d) this.decoder = null;
    });
    this.decoder = d;
    return d;
  }

  private release(d: Decoder): void {
    d.users--;
    if (d.retired && d.users === 0) closeDecoder(d);
  }

  /** Drops the current decoder; its session is released now, or when the last decode session using it ends. */
  private retire(): void {
    const d = this.decoder;
    this.decoder = null;
    if (!d) return;
    d.retired = true;
    if (d.users === 0) closeDecoder(d);
  }

  async start(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const c = this.config;
    const B = prompts.length;
    if (B === 0) throw new Error("startDecoding needs at least one prompt");
    const { width: T, ids, positions: pos, valid, nextPositions: nextPos } = leftPadPrompts(prompts, c.pad_token_id);
    const KV = c.num_key_value_heads;
    const hd = headDim(c);
    const L = c.num_hidden_layers;
    const decoder = this.acquire();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.release(decoder);
    };
    // Fed every run when the decoder does not embed them: the weights as they were when decoding started.
    const weightFeeds = decoder.mode === "fed" ? this.weights.feeds() : {};
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
    const store = (buffers: Float32Array[], out: OrtOutputs, name: (l: number) => string, n: number): void => {
      for (let l = 0; l < L; l++) {
        const src = out[name(l)]!.data as Float32Array;
        const dst = buffers[l]!;
        for (let r = 0; r < B * KV; r++) dst.set(src.subarray(r * n * rowSize, (r + 1) * n * rowSize), (r * capacity + past) * rowSize);
      }
    };
    const run = async (tokens: Int32Array, positions: Int32Array, n: number): Promise<Float32Array> => {
      if (disposed) throw new Error("decode session was disposed");
      if (past + n > c.max_position_embeddings) throw new Error(`sequence of ${past + n} tokens is longer than max_position_embeddings ${c.max_position_embeddings}`);
      const feeds: OrtFeeds = {
        ...weightFeeds,
        input_ids: new this.ort.Tensor("int32", tokens, [B, n]),
        positions: new this.ort.Tensor("int32", positions, [B, n]),
        attn_bias: this.f32(bufferedBiasData(valid, n, past, capacity), [B, 1, n, capacity + n]),
      };
      for (let l = 0; l < L; l++) {
        feeds[GraphNames.keyCache(l)] = this.f32(keys[l]!, [B, KV, capacity, hd]);
        feeds[GraphNames.valueCache(l)] = this.f32(values[l]!, [B, KV, capacity, hd]);
      }
      const out = (await (await decoder.session).run(feeds)) as unknown as OrtOutputs;
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

  dispose(): void {
    this.retire();
  }
}

/** A session from the graph written as files (model and weights) to a temporary folder, removed once it is open. */
async function sessionFromFiles(graph: GraphBuilder, settings: SessionSettings): Promise<OrtSession> {
  const dir = mkdtempSync(join(tmpdir(), "selftrain-decode-"));
  try {
    return await createSession(writeModelFiles(graph, dir), settings);
  } finally {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A platform that will not delete a mapped file: the folder stays in the temporary directory.
    }
  }
}

function closeDecoder(d: Decoder): void {
  void d.session.then((s) => s.release()).catch(() => undefined);
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
