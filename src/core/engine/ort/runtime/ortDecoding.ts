/**
 * Decoding on ONNX Runtime: the sessions, one per weight version while the weights are embedded, and the
 * DecodeSession that feeds each step its KV cache, held on the host on the CPU (bufferedDecodeGraph) and on the
 * device on a GPU (decodeGraph): kvCache.ts.
 */
import type { ModelConfig } from "../../../model/config";
import type { HostWeights } from "../../../model/weights";
import { leftPadPrompts } from "../../../model/promptFormat";
import type { DecodeSession } from "../../computeEngine";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GraphBuilder } from "../onnx/graphBuilder";
import { writeModelFiles } from "../onnx/onnxFiles";
import { bufferedDecodeGraph, decodeGraph } from "../llama/llamaGraphs";
import { DeviceKvCache, HostKvCache, bufferedBiasData, decodeOutputLocations, type KvCache } from "./kvCache";
import type { RowBlocks } from "../llama/rowBlocks";
import { meteredRun, type OrtResults, type TransferCounts } from "./modelState";
import { createSession, type Ort, type OrtFeeds, type OrtSession, type OrtTensor, type SessionSettings } from "./ortRuntime";

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

/** A decoding session and the weights it was built with; retired when they change, released when unused. */
interface Decoder {
  version: number;
  session: Promise<OrtSession>;
  mode: DecoderWeightsMode;
  users: number;
  retired: boolean;
  /** Positions its RoPE tables hold: a decode session on it cannot go past them. */
  ropeRows: number;
}

/** The engine's weights as decoding reads them. */
export interface DecoderWeights {
  /** Bytes of all parameters: whether the decoding graph may embed them. */
  readonly bytes: number;
  /** The current weights by name as views (no copies: for building a graph from them at once); null: not on the host. */
  views(): HostWeights | null;
  /**
   * The current weights as feeds, for a decoding graph that takes them as inputs, kept valid until `release`
   * (a decode session reads them at every step, and training may replace them meanwhile).
   */
  hold(): { feeds: OrtFeeds; release(): void };
  /** Whether the weights are on a device (not the host's memory): decoding keeps its cache there too. */
  readonly onDevice: boolean;
  /**
   * The weights are not read until further notice: the host copy may go to disk and be freed (HostState.park),
   * read back on its next use. Called once a decoder's graph holds its own copy, before its session is opened.
   */
  park?(): Promise<void>;
}

/** How OrtDecoding builds its decoders, beyond the engine's settings. */
export interface DecodingOptions {
  /** Largest parameter size, in bytes, whose weights the decoding graph embeds; above, a weights file. */
  embedLimitBytes?: number;
  /** "fed": never build the weights in (tests; the state on a device does so anyway). */
  force?: "fed";
  /** Fed weights in row blocks (a device's tables larger than one buffer): the graph takes them so. */
  blocks?: RowBlocks;
  /** Rows of RoPE table to build decoders with (the engine's, which grow): default max_position_embeddings. */
  ropeRows?: () => number;
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
    /** The engine's transfer counts: decoding runs add to them (modelState.ts meteredRun). */
    private readonly counts: TransferCounts,
    private readonly options: DecodingOptions = {},
  ) {}

  /** How many decoding sessions were built so far (one per weight version that was decoded with): for tests. */
  get sessionsBuilt(): number {
    return this.built;
  }

  /** The engine's RoPE tables grew: every decoder, fed ones too, was built with the smaller ones. */
  tablesChanged(): void {
    this.retire();
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
   * serves every version; its decode sessions keep their KV cache on the device too (DeviceKvCache).
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
    const { embedLimitBytes = DECODE_EMBED_LIMIT_BYTES, force, blocks } = this.options;
    const ropeRows = this.options.ropeRows?.() ?? this.config.max_position_embeddings;
    const views = force === "fed" ? null : this.weights.views();
    const mode: DecoderWeightsMode = !views ? "fed" : this.weights.bytes <= embedLimitBytes ? "embedded" : "file";
    let session: Promise<OrtSession>;
    if (this.weights.onDevice) {
      const graph = decodeGraph(this.config, { ...(blocks ? { blocks } : {}), ropeRows });
      session = createSession(graph.toBytes(), this.settings, { outputLocations: decodeOutputLocations(graph.outputNames()) });
    } else {
      // The graph's bytes or files hold a copy of the weights from here on: the engine's own may be parked
      // (freed to disk) while ORT opens the session and packs its copy, so the two are not resident together.
      const graph = bufferedDecodeGraph(this.config, { ...(views ? { weights: views } : {}), ropeRows });
      const model = mode === "file" ? filesOf(graph) : { bytes: graph.toBytes() };
      const parked = views ? this.weights.park?.() : undefined;
      session = (async () => {
        await parked;
        if (!("path" in model)) return createSession(model.bytes, this.settings);
        try {
          return await createSession(model.path, this.settings);
        } finally {
          model.remove();
        }
      })();
    }
    const d: Decoder = { version: this.weightsVersion, session, mode, users: 1, retired: false, ropeRows };
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

  /** `positions`: the most positions a row will reach (prompt and new tokens), when known: the cache's size. */
  async start(prompts: readonly number[][], positions = 0): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const c = this.config;
    const B = prompts.length;
    if (B === 0) throw new Error("startDecoding needs at least one prompt");
    const { width: T, ids, positions: pos, valid, nextPositions: nextPos } = leftPadPrompts(prompts, c.pad_token_id);
    const decoder = this.acquire();
    // Fed every run when the decoder does not embed them: the weights as they were when decoding started, held
    // until the session ends so that an optimizer step or new weights meanwhile cannot free what it reads.
    const held = decoder.mode === "fed" ? this.weights.hold() : null;
    const weightFeeds = held?.feeds ?? {};
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      held?.release();
      this.release(decoder);
    };
    // On a device the cache stays there beside the weights (decodeGraph); on the CPU it is host arrays (bufferedDecodeGraph).
    const cache: KvCache = this.weights.onDevice ? new DeviceKvCache(this.ort, c, B) : new HostKvCache(this.ort, c, B, T, positions);
    // The key slots' validity, the cache's masked lead first: the prompts' padding, then every new token.
    const keyValid = valid.map((row) => [...Array.from({ length: cache.lead }, () => false), ...row]);
    let past = 0;
    let disposed = false;
    let running = false;
    /** The cache and the decoder let go: at dispose, or once the run in flight has ended (it reads the cache). */
    const finish = (): void => {
      cache.dispose();
      release();
    };
    const run = async (tokens: Int32Array, positions: Int32Array, n: number): Promise<Float32Array> => {
      if (disposed) throw new Error("decode session was disposed");
      if (past + n > c.max_position_embeddings) throw new Error(`sequence of ${past + n} tokens is longer than max_position_embeddings ${c.max_position_embeddings}`);
      if (past + n > decoder.ropeRows) throw new Error(`sequence of ${past + n} tokens is longer than this decode session's ${decoder.ropeRows} positions (start decoding with the number of new tokens it will take)`);
      const host: OrtFeeds = {
        input_ids: new this.ort.Tensor("int32", tokens, [B, n]),
        positions: new this.ort.Tensor("int32", positions, [B, n]),
        attn_bias: this.f32(bufferedBiasData(keyValid, n, cache.filled, cache.slots), [B, 1, n, cache.slots + n]),
      };
      let out: OrtResults;
      running = true;
      try {
        // On cuda the host cache (and fed weights) cross to the GPU at every step: counted as moved.
        out = await meteredRun(await decoder.session, this.counts, (this.settings.executionProvider ?? "cpu") === "cpu", { ...weightFeeds, ...cache.feeds() }, host);
      } catch (e) {
        if (disposed) finish();
        throw e;
      } finally {
        running = false;
      }
      // Disposed while running: nobody wants the result, and the cache can go now.
      if (disposed) {
        cache.drop(out);
        finish();
        throw new Error("decode session was disposed");
      }
      cache.take(out, n);
      past += n;
      return out["logits"]!.data as Float32Array;
    };
    let first: Float32Array;
    try {
      first = await run(ids, pos, T);
    } catch (e) {
      if (!disposed) finish();
      throw e;
    }
    const session: DecodeSession = {
      step: async (tokens) => {
        if (tokens.length !== B) throw new Error(`step needs ${B} tokens, got ${tokens.length}`);
        for (const row of keyValid) row.push(true);
        const positions = Int32Array.from(nextPos);
        for (let b = 0; b < B; b++) nextPos[b] = (nextPos[b] as number) + 1;
        return run(Int32Array.from(tokens), positions, 1);
      },
      dispose: () => {
        if (disposed) return;
        disposed = true;
        if (!running) finish();
      },
    };
    return { session, logits: first };
  }

  dispose(): void {
    this.retire();
  }
}

/** A session from the graph written as files (model and weights) to a temporary folder, removed once it is open. */
/** `graph` written as a model file and a weights file in a new temporary folder, and how to remove them. */
function filesOf(graph: GraphBuilder): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "selftrain-decode-"));
  const remove = (): void => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A platform that will not delete a mapped file: the folder stays in the temporary directory.
    }
  };
  try {
    return { path: writeModelFiles(graph, dir), remove };
  } catch (e) {
    remove();
    throw e;
  }
}

function closeDecoder(d: Decoder): void {
  void d.session.then((s) => s.release()).catch(() => undefined);
}
