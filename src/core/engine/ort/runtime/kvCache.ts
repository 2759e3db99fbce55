/**
 * Where a decode session keeps its KV cache between steps. On the CPU the cache is host arrays of a fixed
 * capacity that the buffered decoding graph reads in place and the host writes each step's new keys and values
 * into (HostKvCache). On a device the cache never leaves it: the concat decoding graph's present_* outputs stay
 * in GPU buffers and feed the next step as past_* (DeviceKvCache), so a step moves its tokens, positions and
 * attention bias in and its logits out, whatever the model's depth or the sequence's length.
 */
import { headDim } from "../../../model/architecture";
import type { ModelConfig } from "../../../model/config";
import { GraphNames } from "../llama/llamaGraphs";
import type { OrtResults } from "./modelState";
import type { Ort, OrtFeeds, OrtTensor } from "./ortRuntime";

/** The host cache grows in steps of this many positions (a step's attention reads at most this many empty slots). */
export const KV_BUCKET = 32;

/** A decode session's cache of past keys and values, per layer. */
export interface KvCache {
  /** Masked slots before the prompt's first position (the device cache's one: see DeviceKvCache). */
  readonly lead: number;
  /** Slots the cache holds now (filled or not): the attention bias covers these, then the run's new tokens. */
  readonly slots: number;
  /** Slots filled so far, the lead included. */
  readonly filled: number;
  /** The cache as a run's feeds. */
  feeds(): OrtFeeds;
  /** Takes a run's new keys and values for `n` positions. */
  take(out: OrtResults, n: number): void;
  /** Releases a run's cache outputs that will not be taken (the session was disposed while it ran). */
  drop(out: OrtResults): void;
  dispose(): void;
}

/** Per layer: batch rows × kv heads, head size. */
function layout(c: ModelConfig, B: number): { L: number; KV: number; hd: number; rows: number } {
  return { L: c.num_hidden_layers, KV: c.num_key_value_heads, hd: headDim(c), rows: B * c.num_key_value_heads };
}

/**
 * The CPU's cache for bufferedDecodeGraph: per layer [B, KV, C, hd] host arrays of capacity C, grown by
 * KV_BUCKET; each run's new_key / new_value [B, KV, n, hd] are written into slots filled … filled+n-1.
 * Never empty: a zero-sized MatMul crashes the WebGPU provider, and the prompt pass attends to the first
 * bucket's empty slots, masked.
 */
export class HostKvCache implements KvCache {
  readonly lead = 0;
  private capacity = 0;
  private past = 0;
  private keys: Float32Array[];
  private values: Float32Array[];

  constructor(
    private readonly ort: Ort,
    private readonly c: ModelConfig,
    private readonly B: number,
    firstRun: number,
    /**
     * Positions the session will hold at most (prompt and new tokens), when known: the cache is made that size at
     * once rather than grown bucket by bucket, each growth holding the old and the new buffers together (at batch
     * 64 of SmolLM2-135M, 48 positions: 141 MB instead of 189 MB plus a 94 MB copy).
     */
    expected = 0,
  ) {
    const { L } = layout(c, B);
    this.keys = Array.from({ length: L }, () => new Float32Array(0));
    this.values = Array.from({ length: L }, () => new Float32Array(0));
    const whole = Math.min(expected, c.max_position_embeddings);
    if (whole > firstRun) this.grow(whole, true);
    else this.grow(firstRun + 1);
  }

  get slots(): number {
    return this.capacity;
  }

  get filled(): number {
    return this.past;
  }

  /** Room for `need` positions: new buffers of the next bucket's capacity (or `need` exactly), the filled slots copied. */
  private grow(need: number, exact = false): void {
    const { rows, hd } = layout(this.c, this.B);
    const next = exact ? need : Math.min(Math.ceil(need / KV_BUCKET) * KV_BUCKET, Math.max(need, this.c.max_position_embeddings));
    const move = (old: Float32Array): Float32Array => {
      const fresh = new Float32Array(rows * next * hd);
      for (let r = 0; r < rows; r++) fresh.set(old.subarray(r * this.capacity * hd, (r * this.capacity + this.past) * hd), r * next * hd);
      return fresh;
    };
    this.keys = this.keys.map(move);
    this.values = this.values.map(move);
    this.capacity = next;
  }

  feeds(): OrtFeeds {
    const { L, KV, hd } = layout(this.c, this.B);
    const dims = [this.B, KV, this.capacity, hd];
    const feeds: OrtFeeds = {};
    for (let l = 0; l < L; l++) {
      feeds[GraphNames.keyCache(l)] = new this.ort.Tensor("float32", this.keys[l]!, dims);
      feeds[GraphNames.valueCache(l)] = new this.ort.Tensor("float32", this.values[l]!, dims);
    }
    return feeds;
  }

  take(out: OrtResults, n: number): void {
    if (this.past + n > this.capacity) this.grow(this.past + n);
    const { L, rows, hd } = layout(this.c, this.B);
    const store = (buffers: Float32Array[], name: (l: number) => string): void => {
      for (let l = 0; l < L; l++) {
        const src = out[name(l)]!.data as Float32Array;
        const dst = buffers[l]!;
        for (let r = 0; r < rows; r++) dst.set(src.subarray(r * n * hd, (r + 1) * n * hd), (r * this.capacity + this.past) * hd);
      }
    };
    store(this.keys, GraphNames.newKey);
    store(this.values, GraphNames.newValue);
    this.past += n;
  }

  drop(): void {}

  dispose(): void {
    this.keys = [];
    this.values = [];
  }
}

/**
 * A device's cache for decodeGraph: per layer the past_* tensors [B, KV, P, hd] are the previous run's
 * present_* outputs, left in GPU buffers (the session's outputLocations: decodeOutputLocations) and released
 * once the next run has replaced them. The first run's past is one zero slot, masked (the lead): the WebGPU
 * provider crashes on a zero-sized tensor. Present joins past and new keys on the device, which costs a copy of
 * the cache in device memory per step and no transfer.
 */
export class DeviceKvCache implements KvCache {
  readonly lead = 1;
  private past: OrtTensor[];

  constructor(
    ort: Ort,
    private readonly c: ModelConfig,
    B: number,
  ) {
    const { L, KV, hd } = layout(c, B);
    const zeros = new ort.Tensor("float32", new Float32Array(B * KV * hd), [B, KV, 1, hd]);
    this.past = Array.from({ length: 2 * L }, () => zeros);
  }

  get slots(): number {
    return this.filled;
  }

  get filled(): number {
    return (this.past[0]?.dims[2] as number | undefined) ?? 0;
  }

  feeds(): OrtFeeds {
    const feeds: OrtFeeds = {};
    for (let l = 0; l < this.c.num_hidden_layers; l++) {
      feeds[GraphNames.pastKey(l)] = this.past[2 * l]!;
      feeds[GraphNames.pastValue(l)] = this.past[2 * l + 1]!;
    }
    return feeds;
  }

  take(out: OrtResults): void {
    const next: OrtTensor[] = [];
    for (let l = 0; l < this.c.num_hidden_layers; l++) next.push(out[GraphNames.presentKey(l)]!, out[GraphNames.presentValue(l)]!);
    this.release();
    this.past = next;
  }

  drop(out: OrtResults): void {
    for (const [name, t] of Object.entries(out)) if (isPresent(name) && t.location !== "cpu") t.dispose();
  }

  /** The current past tensors' device buffers (the first run's host zeros need nothing). */
  private release(): void {
    for (const t of this.past) if (t.location !== "cpu") t.dispose();
  }

  dispose(): void {
    this.release();
    this.past = [];
  }
}

/** decodeGraph's outputs for a device: present_* stay in GPU buffers, the logits come to the host. */
export function decodeOutputLocations(names: readonly string[]): Record<string, "cpu" | "gpu-buffer"> {
  return Object.fromEntries(names.map((n) => [n, isPresent(n) ? "gpu-buffer" : "cpu"]));
}

/** decodeGraph's present_key.<l> / present_value.<l> (GraphNames). */
function isPresent(name: string): boolean {
  return name.startsWith("present_");
}

/**
 * The attention bias of the decoding graphs, [B, 1, T, C + T]: TfLlama's paddedCausalBias (−1e9 on padding and
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
