import type * as TfCore from "@tensorflow/tfjs-core";
import { oneHotF32 } from "./tfOps";
import type { CustomGradientFunc } from "@tensorflow/tfjs-core/dist/engine";
import { attentionBiases, hasQkNorm, headDim, parameterShapes, ropeTables } from "../../model/architecture";
import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;
type Variable = TfCore.Variable;

/** Keys and values of one layer so far: [B, KV, Tpast, hd] each. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

export interface ForwardOptions {
  /** Position of each token, [B, T] int32; defaults to 0..T-1 for every row (or after the cache). */
  positions?: Tensor;
  /** Additive attention bias [B, 1, T, Tk] (0 or a large negative); defaults to causal. */
  bias?: Tensor;
  /** Past keys and values per layer; the new ones are returned in `cache`. */
  cache?: LayerCache[];
}

/**
 * A decoder-only transformer, Llama-style (RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query
 * attention, optionally tied embeddings), on TensorFlow.js, with the families' variations of architecture.ts
 * (attention biases, per-head q/k norms, a head dimension of its own, llama3 RoPE scaling). Parameters carry
 * Hugging Face *ForCausalLM names and layouts (linear weights [out, in]).
 *
 * Shapes: B batch, T new tokens, Tk keys (past + new), D hidden, H heads, KV key/value heads, G = H / KV,
 * hd head dimension, I intermediate, V vocabulary.
 */
let instances = 0;

/**
 * Rows of RoPE table a model starts with (or max_position_embeddings, if smaller), as the ORT engine's
 * ROPE_ROWS_START: tables of every position would take 2 × max_position_embeddings × head_dim floats (67 MB for
 * Llama 3.2's 131,072 positions, a gigabyte at 1M) where runs use a few hundred. A longer sequence grows them.
 */
const ROPE_ROWS_START = 1024;

export class TfLlama {
  /** By Hugging Face name; each variable's own name is prefixed, since tfjs variable names are global. */
  readonly params = new Map<string, Variable>();
  private cosTable: Tensor; // [ropeRows, hd]
  private sinTable: Tensor; // [ropeRows, hd]
  private ropeRows: number;
  /** Tables outgrown, kept until dispose: a gradient tape still running may hold them. */
  private readonly outgrown: Tensor[] = [];

  constructor(
    readonly tf: Tf,
    readonly config: ModelConfig,
    weights: HostWeights,
  ) {
    const prefix = `llama${instances++}/`;
    for (const [name, shape] of parameterShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new Error(`missing parameter ${name}`);
      this.params.set(name, tf.variable(tf.tensor(w.data, shape, "float32"), true, prefix + name));
    }
    this.ropeRows = Math.min(config.max_position_embeddings, ROPE_ROWS_START);
    [this.cosTable, this.sinTable] = this.ropeTensors(this.ropeRows);
  }

  /** cos and sin of positions 0…rows−1, [rows, hd], kept out of any tidy scope they are made in. */
  private ropeTensors(rows: number): [Tensor, Tensor] {
    const { cos, sin } = ropeTables(this.config, rows);
    const hd = headDim(this.config);
    return [this.tf.keep(this.tf.tensor2d(cos, [rows, hd])), this.tf.keep(this.tf.tensor2d(sin, [rows, hd]))];
  }

  /** Grows the RoPE tables (doubling, at most to max_position_embeddings) to cover positions 0…n−1. */
  private needPositions(n: number): void {
    if (n <= this.ropeRows) return;
    let rows = this.ropeRows;
    while (rows < n) rows *= 2;
    this.ropeRows = Math.min(this.config.max_position_embeddings, rows);
    this.outgrown.push(this.cosTable, this.sinTable);
    [this.cosTable, this.sinTable] = this.ropeTensors(this.ropeRows);
  }

  private p(name: string): Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** Token embeddings [B, T, D]. The gradient is a one-hot matMul: wasm has no UnsortedSegmentSum for gather's. */
  private embed(ids: Tensor): Tensor {
    const tf = this.tf;
    const V = this.config.vocab_size;
    const D = this.config.hidden_size;
    const [B, T] = ids.shape as [number, number];
    const lookup = tf.customGrad(((E: Tensor) => {
      const value = tf.gather(E, ids.reshape([-1])).reshape([B, T, D]);
      const gradFunc = (dy: Tensor): Tensor => tf.matMul(oneHotF32(tf, ids.reshape([-1]), V), dy.reshape([-1, D]), true, false);
      return { value, gradFunc };
    }) as CustomGradientFunc<Tensor>);
    return lookup(this.p("model.embed_tokens.weight"));
  }

  private rmsNorm(x: Tensor, weight: string): Tensor {
    const tf = this.tf;
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.config.rms_norm_eps))), this.p(weight));
  }

  /** x [B*T, in] @ W[out, in]^T (+ bias [out]) → [B*T, out]. */
  private linear(x: Tensor, weight: string, bias?: string): Tensor {
    const y = this.tf.matMul(x, this.p(weight), false, true);
    return bias ? this.tf.add(y, this.p(bias)) : y;
  }

  /** Rotary embedding of x [B, n, T, hd] with cos/sin [B, 1, T, hd], HF's rotate_half convention. */
  private rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const tf = this.tf;
    const half = headDim(this.config) / 2;
    const [x1, x2] = tf.split(x, [half, half], -1) as [Tensor, Tensor];
    const rotated = tf.concat([tf.neg(x2), x1], -1);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  }

  /**
   * Logits [B, T, V] for token ids [B, T] (int32). With a cache, the ids follow the cached tokens and the
   * returned cache holds keys and values of both.
   */
  forward(ids: Tensor, options: ForwardOptions = {}): { logits: Tensor; cache: LayerCache[] } {
    const tf = this.tf;
    const c = this.config;
    const [B, T] = ids.shape as [number, number];
    const D = c.hidden_size;
    const H = c.num_attention_heads;
    const KV = c.num_key_value_heads;
    const G = H / KV;
    const hd = headDim(c);
    const past = options.cache?.[0]?.k.shape[2] ?? 0;
    const Tk = past + T;
    if (Tk > c.max_position_embeddings) throw new Error(`sequence of ${Tk} tokens is longer than max_position_embeddings ${c.max_position_embeddings}`);
    this.needPositions(Tk); // positions, given or not, are below Tk (left padding only lowers them)

    const positions = options.positions ?? tf.add(tf.range(past, past + T, 1, "int32").reshape([1, T]), tf.zeros([B, T], "int32"));
    const cos = tf.gather(this.cosTable, positions).reshape([B, 1, T, hd]);
    const sin = tf.gather(this.sinTable, positions).reshape([B, 1, T, hd]);
    const bias = options.bias ?? causalBias(tf, T, past);

    const projBias = attentionBiases(c);
    let h = this.embed(ids); // [B, T, D]
    const newCache: LayerCache[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const x = this.rmsNorm(h, `${p}.input_layernorm.weight`).reshape([B * T, D]);
      // Projections to heads [B, n, T, hd]; qwen3 RMS-normalises each head over hd before RoPE.
      const project = (proj: "q_proj" | "k_proj" | "v_proj", n: number): Tensor => {
        let y = this.linear(x, `${p}.self_attn.${proj}.weight`, projBias.qkv ? `${p}.self_attn.${proj}.bias` : undefined).reshape([B, T, n, hd]);
        if (proj !== "v_proj" && hasQkNorm(c)) y = this.rmsNorm(y, `${p}.self_attn.${proj === "q_proj" ? "q_norm" : "k_norm"}.weight`);
        return y.transpose([0, 2, 1, 3]);
      };
      const q = this.rope(project("q_proj", H), cos, sin); // [B, H, T, hd]
      let k = this.rope(project("k_proj", KV), cos, sin); // [B, KV, T, hd]
      let v = project("v_proj", KV);
      const cached = options.cache?.[l];
      if (cached) {
        k = tf.concat([cached.k, k], 2); // [B, KV, Tk, hd]
        v = tf.concat([cached.v, v], 2);
      }
      newCache.push({ k, v });
      // Grouped-query attention without copying keys: head h uses key/value head floor(h / G), so the
      // G query heads of a group are stacked along the time axis: [B, KV, G*T, hd].
      const qg = q.reshape([B, KV, G * T, hd]);
      let scores = tf.matMul(qg, k, false, true).reshape([B, H, T, Tk]); // [B, H, T, Tk]
      scores = tf.add(tf.mul(scores, 1 / Math.sqrt(hd)), bias);
      const attn = tf.softmax(scores, -1).reshape([B, KV, G * T, Tk]);
      const ctx = tf.matMul(attn, v).reshape([B, H, T, hd]).transpose([0, 2, 1, 3]).reshape([B * T, H * hd]);
      h = tf.add(h, this.linear(ctx, `${p}.self_attn.o_proj.weight`, projBias.o ? `${p}.self_attn.o_proj.bias` : undefined).reshape([B, T, D]));

      const y = this.rmsNorm(h, `${p}.post_attention_layernorm.weight`).reshape([B * T, D]);
      const gate = this.linear(y, `${p}.mlp.gate_proj.weight`);
      const up = this.linear(y, `${p}.mlp.up_proj.weight`);
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // SwiGLU: silu(gate) * up, [B*T, I]
      h = tf.add(h, this.linear(act, `${p}.mlp.down_proj.weight`).reshape([B, T, D]));
    }
    const out = this.rmsNorm(h, "model.norm.weight").reshape([B * T, D]);
    const head = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    const logits = this.linear(out, head).reshape([B, T, c.vocab_size]);
    return { logits, cache: newCache };
  }

  /** Weights copied to the host, for checkpoints and for the other engine. */
  async toHost(): Promise<HostWeights> {
    const out: HostWeights = new Map();
    for (const [name, v] of this.params) out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    return out;
  }

  /** Replaces every parameter's value (same shapes), e.g. to restart from the base model. */
  load(weights: HostWeights): void {
    for (const [name, v] of this.params) {
      const w = weights.get(name);
      if (!w) throw new Error(`missing parameter ${name}`);
      this.tf.tidy(() => v.assign(this.tf.tensor(w.data, v.shape, "float32")));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.cosTable.dispose();
    this.sinTable.dispose();
    for (const t of this.outgrown) t.dispose();
    this.outgrown.length = 0;
  }
}

/** Causal additive bias [1, 1, T, past + T]: token t sees keys 0..past+t. */
export function causalBias(tf: Tf, T: number, past: number): Tensor {
  const Tk = past + T;
  const data = new Float32Array(T * Tk);
  for (let t = 0; t < T; t++) for (let j = past + t + 1; j < Tk; j++) data[t * Tk + j] = -1e9;
  return tf.tensor4d(data, [1, 1, T, Tk]);
}

/**
 * Bias [B, 1, T, past + T] for rows with padding: key j of row b is hidden when it is padding
 * (`keyValid[b][j]` false) or in the future.
 */
export function paddedCausalBias(tf: Tf, keyValid: boolean[][], T: number, past: number): Tensor {
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
  return tf.tensor4d(data, [B, 1, T, Tk]);
}
