/**
 * The Llama-style model (RMSNorm, RoPE, SwiGLU, grouped-query attention, tied or untied embeddings, and the
 * families' attention biases and q/k norms of architecture.ts) as ONNX graphs computing what TfLlama computes
 * (up to float32 rounding): training steps (SFT and DPO: loss → gradients, by GraphBuilder's autodiff),
 * per-token log-probabilities, and incremental decoding with a KV cache (the optimiser's graphs: stateGraphs.ts).
 *
 * Parameters are graph inputs under their Hugging Face names, so one session serves changing weights and the
 * engine keeps weights, gradients and Adam moments where its provider computes (runtime/modelState.ts). Batch and length are symbolic
 * ("B", "T", "P" past length), so one session serves every shape.
 *
 * Shapes: B batch, T new tokens, P past tokens, Tk = P + T keys, D hidden, H heads, KV key/value heads,
 * G = H / KV, hd head dimension, I intermediate, V vocabulary.
 */
import { GraphBuilder } from "../onnx/graphBuilder";
import { blockName, blockedGather, blocksOf, type RowBlocks } from "./rowBlocks";
import type { FloatType, Value } from "../onnx/graphRecorder";
import { vocabularyChunkRows } from "./vocabularyChunks";
import { projectedTokenLogProbs, rmsNorm, rope, swiglu, tokenLogProbs } from "./llamaOps";
import { times, type Dim } from "../onnx/symbolicShape";
import { attentionBiases, hasQkNorm, headDim, parameterShapes, ropeTables } from "../../../model/architecture";
import type { ModelConfig } from "../../../model/config";
import type { HostWeights } from "../../../model/weights";

/** Graph input and output names shared by the graphs and the engine. */
export const GraphNames = {
  grad: (param: string): string => `grad.${param}`,
  gradIn: (param: string): string => `grad_in.${param}`,
  pastKey: (layer: number): string => `past_key.${layer}`,
  pastValue: (layer: number): string => `past_value.${layer}`,
  presentKey: (layer: number): string => `present_key.${layer}`,
  presentValue: (layer: number): string => `present_value.${layer}`,
  keyCache: (layer: number): string => `key_cache.${layer}`,
  valueCache: (layer: number): string => `value_cache.${layer}`,
  newKey: (layer: number): string => `new_key.${layer}`,
  newValue: (layer: number): string => `new_value.${layer}`,
} as const;

/** The DPO graph's metric outputs, TRL's names with "/" spelled "_" (ONNX tools prefer plain names). */
export const DPO_METRIC_OUTPUTS = {
  loss: "loss",
  "rewards/chosen": "rewards_chosen",
  "rewards/rejected": "rewards_rejected",
  "rewards/margins": "rewards_margins",
  "rewards/accuracies": "rewards_accuracies",
  "logps/chosen": "logps_chosen",
  "logps/rejected": "logps_rejected",
} as const;

export interface GraphOptions {
  /** float64 builds the same graphs for gradient checks; the engine uses float32. */
  float?: FloatType;
  /** Inference graphs: parameters embedded as initializers (a self-contained model for other ONNX tools), not inputs. */
  weights?: HostWeights;
  /**
   * Rows of the output projection per chunk in the log-probabilities (by default graphBuilder's
   * vocabularyChunkRows: whole up to 65,536, else 16,384); a vocabulary within it keeps the [B*T, V] logits whole.
   */
  vocabChunkRows?: number;
  /**
   * Training graphs: also take the gradients accumulated so far (grad_in.<name>) and a bool `accumulate` [], and
   * output grad.<name> = (accumulate ? grad_in : 0) + this step's gradient. The device engine's form: the sum
   * stays where it is computed. Where, not a multiply by 0, so that stale values never leak in as NaN.
   */
  accumulateGradients?: boolean;
  /** Parameters taken as row blocks (graph inputs `<name>#<k>`), for a provider whose buffers cannot hold them whole. */
  blocks?: RowBlocks;
  /**
   * Rows of the RoPE tables the graph holds as constants, the longest sequence it serves; default
   * max_position_embeddings. Llama 3.2's 131,072 positions make the two tables 67 MB in every graph, where a run
   * uses a few hundred.
   */
  ropeRows?: number;
}

/**
 * The architecture's RoPE tables [maxPos, hd] (the ones TfLlama uses), with sin's first half negated so that
 * rotate_half is a swap of halves (see llamaOps rope).
 */
function signedRopeTables(c: ModelConfig, rows = c.max_position_embeddings): { cos: Float32Array; sinSigned: Float32Array; rows: number } {
  const hd = headDim(c);
  const { cos, sin } = ropeTables(c, rows);
  const sinSigned = sin.slice();
  for (let p = 0; p < rows; p++) for (let i = 0; i < hd / 2; i++) sinSigned[p * hd + i] = -(sin[p * hd + i] as number);
  return { cos, sinSigned, rows };
}

function declareParams(b: GraphBuilder, c: ModelConfig, weights?: HostWeights, blocks?: RowBlocks): Map<string, Value> {
  const params = new Map<string, Value>();
  for (const [name, shape] of parameterShapes(c)) {
    const rows = blocks?.get(name);
    if (rows && !weights) {
      rows.forEach((n, k) => params.set(blockName(name, k), b.input(blockName(name, k), b.float, [n, ...shape.slice(1)])));
      continue;
    }
    if (!weights) {
      params.set(name, b.input(name, b.float, shape));
      continue;
    }
    const w = weights.get(name);
    if (!w) throw new Error(`missing parameter ${name}`);
    params.set(name, b.initializer(name, w.data, shape));
  }
  return params;
}

function param(params: Map<string, Value>, name: string): Value {
  const v = params.get(name);
  if (!v) throw new Error(`no parameter ${name}`);
  return v;
}

interface ForwardInputs {
  ids: Value; // [B, T] int32
  /** Broadcastable to [B, H, T, hd]: [T, hd] for training, [B, 1, T, hd] for decoding. */
  cos: Value;
  sinSigned: Value;
  /** Additive attention bias broadcastable to [B, H, T, Tk]. */
  bias: Value;
  /** Past keys / values per layer, [B, KV, P, hd], joined to the new ones by Concat (the conventional form). */
  past?: Array<{ k: Value; v: Value }>;
  /**
   * Or fixed-capacity caches per layer, [B, KV, C, hd] with slots the bias hides, attended beside the new keys
   * without joining them (bufferedDecodeGraph).
   */
  buffer?: Array<{ k: Value; v: Value }>;
  /** Logits of the last position only, [B, V] (decoding), instead of every position [B*T, V]. */
  lastOnly?: boolean;
}

/**
 * The transformer: the final normalised hidden states [B*T, D] (or [B, D] with lastOnly) and the output
 * projection [V, D] that makes them logits (see `logits`), and each layer's keys and values: [B, KV, P+T, hd]
 * with `past`, the new ones [B, KV, T, hd] otherwise.
 *
 * The same computation as TfLlama, arranged for fewer kernels (ORT runs each element-wise op as its own pass):
 * the residual adds and the q/k/v biases are the Gemms' C inputs, and the attention scale 1/sqrt(hd) is folded
 * into W_q and its bias (a [H*hd, D] product per step), or into q_norm's weight where q is normalised, instead
 * of scaling the [B, H, T, Tk] scores forwards and backwards. Both change float32 rounding only.
 * (Concatenating the q/k/v or gate/up weights into one Gemm measured slower here: the wider outputs fall out of
 * cache and the splits cost more than the saved launches.)
 */
function forward(b: GraphBuilder, c: ModelConfig, params: Map<string, Value>, inp: ForwardInputs): { hidden: Value; head: Value[]; present: Array<{ k: Value; v: Value }> } {
  const [Bd, Td] = inp.ids.shape as [Dim, Dim];
  const BT = `${Bd}*${Td}`;
  const D = c.hidden_size;
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const G = H / KV;
  const hd = headDim(c);
  const p = (name: string): Value => param(params, name);
  const scale = b.scalar(1 / Math.sqrt(hd));
  const projBias = attentionBiases(c);
  const qkNorm = hasQkNorm(c);

  let h = b.reshape(blockedGather(b, blocksOf(params, "model.embed_tokens.weight"), inp.ids), [BT, D]); // [B*T, D]
  const present: Array<{ k: Value; v: Value }> = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const pre = `model.layers.${l}`;
    const x = rmsNorm(b, h, p(`${pre}.input_layernorm.weight`), c.rms_norm_eps);
    // Projections to heads [B, n, T, hd]: x·Wᵀ (+ bias, added by the Gemm), then qwen3's per-head RMSNorm over hd.
    const heads = (w: Value, bias: Value | null, n: number, norm: Value | null): Value => {
      let y = b.reshape(b.gemm(x, w, false, true, bias ?? undefined), [Bd, Td, n, hd]);
      if (norm) y = rmsNorm(b, y, norm, c.rms_norm_eps);
      return b.transpose(y, [0, 2, 1, 3]);
    };
    const projection = (proj: string): { w: Value; bias: Value | null } => ({ w: p(`${pre}.self_attn.${proj}.weight`), bias: projBias.qkv ? p(`${pre}.self_attn.${proj}.bias`) : null });
    // The scale goes where it multiplies q linearly: into q_norm's weight when there is one (the norm undoes
    // any scaling of its input), else into W_q and its bias.
    const qp = projection("q_proj");
    const q = qkNorm
      ? rope(b, heads(qp.w, qp.bias, H, b.mul(p(`${pre}.self_attn.q_norm.weight`), scale)), inp.cos, inp.sinSigned)
      : rope(b, heads(b.mul(qp.w, scale), qp.bias && b.mul(qp.bias, scale), H, null), inp.cos, inp.sinSigned); // [B, H, T, hd], pre-scaled
    const kp = projection("k_proj");
    let k = rope(b, heads(kp.w, kp.bias, KV, qkNorm ? p(`${pre}.self_attn.k_norm.weight`) : null), inp.cos, inp.sinSigned); // [B, KV, T, hd]
    const vp = projection("v_proj");
    let v = heads(vp.w, vp.bias, KV, null);
    const past = inp.past?.[l];
    if (past) {
      k = b.concat([past.k, k], 2); // [B, KV, Tk, hd]
      v = b.concat([past.v, v], 2);
    }
    present.push({ k, v });
    // Grouped-query attention without copying keys: the G query heads of a key/value head are stacked along
    // time, [B, KV, G*T, hd], as TfLlama does.
    const qg = b.reshape(q, [Bd, KV, times(G, Td), hd]);
    const keysT = (keys: Value): Value => b.transpose(keys, [0, 1, 3, 2]);
    const attend = (scores: Value): Value => {
      const Tk = scores.shape[3] as Dim;
      const s = b.reshape(scores, [Bd, H, Td, Tk]); // [B, H, T, Tk], already scaled
      return b.reshape(b.softmax(b.add(s, inp.bias)), [Bd, KV, times(G, Td), Tk]);
    };
    let ctxG: Value; // [B, KV, G*T, hd]
    const buf = inp.buffer?.[l];
    if (buf) {
      // Scores over the cache and over the new keys side by side, [B, KV, G*T, C+T]: one softmax over both,
      // then each part weighs its own values. Only these scores are joined, not the cache.
      const C = buf.k.shape[2] as Dim;
      const attn = attend(b.concat([b.matmul(qg, keysT(buf.k)), b.matmul(qg, keysT(k))], 3));
      const [aCache, aNew] = b.split(attn, 3, [C, Td]);
      ctxG = b.add(b.matmul(aCache!, buf.v), b.matmul(aNew!, v));
    } else {
      ctxG = b.matmul(attend(b.matmul(qg, keysT(k))), v);
    }
    const ctx = b.reshape(b.transpose(b.reshape(ctxG, [Bd, H, Td, hd]), [0, 2, 1, 3]), [BT, H * hd]); // [B*T, H*hd]
    h = b.gemm(ctx, p(`${pre}.self_attn.o_proj.weight`), false, true, h);
    if (projBias.o) h = b.add(h, p(`${pre}.self_attn.o_proj.bias`));

    const y = rmsNorm(b, h, p(`${pre}.post_attention_layernorm.weight`), c.rms_norm_eps);
    const gate = b.gemm(y, p(`${pre}.mlp.gate_proj.weight`), false, true);
    const up = b.gemm(y, p(`${pre}.mlp.up_proj.weight`), false, true);
    const act = swiglu(b, gate, up); // [B*T, I]
    h = b.gemm(act, p(`${pre}.mlp.down_proj.weight`), false, true, h);
  }
  if (inp.lastOnly) {
    // Only the last position's logits are needed to decode: the final norm and the head run on [B, D].
    const last = b.slice(b.reshape(h, [Bd, Td, D]), 1, -1, Number.MAX_SAFE_INTEGER, 1);
    h = b.reshape(last, [Bd, D]);
  }
  const hidden = rmsNorm(b, h, p("model.norm.weight"), c.rms_norm_eps);
  return { hidden, head: blocksOf(params, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"), present };
}

/** Logits hidden · headᵀ: [B*T, V] or [B, V] (joined over the head's row blocks). */
function logits(b: GraphBuilder, f: { hidden: Value; head: Value[] }): Value {
  const parts = f.head.map((w) => b.gemm(f.hidden, w, false, true));
  return parts.length === 1 ? parts[0]! : b.concat(parts, 1);
}

/** Training inputs: ids, targets and mask [B, T] (right-padded, see TokenBatch), causal bias and RoPE for 0..T-1. */
function trainingInputs(b: GraphBuilder, c: ModelConfig, batch: Dim, ropeRows?: number) {
  const ids = b.input("input_ids", "int32", [batch, "T"]);
  const targets = b.input("targets", "int32", [batch, "T"]);
  const mask = b.input("mask", b.float, [batch, "T"]);
  const { cos, sinSigned, rows } = signedRopeTables(c, ropeRows);
  const hd = headDim(c);
  const T = b.dim("T");
  const cosT = b.slice(b.constant(cos, [rows, hd]), 0, 0, T, "T"); // [T, hd]
  const sinT = b.slice(b.constant(sinSigned, [rows, hd]), 0, 0, T, "T");
  // Causal bias [T, T]: −1e9 above the diagonal, as TfLlama's causalBias: the upper triangle (k = 1) of a [T, T]
  // fill. Not an int64 Range and comparison: the WebGPU provider has neither, so they ran on the CPU and the
  // [T, T] mask was copied to the GPU at every run.
  const bias = b.emit1("Trilu", [b.expand(b.scalar(-1e9), ["T", "T"]), b.intScalar(1)], b.float, ["T", "T"], { upper: 1 });
  return { ids, targets, mask, cos: cosT, sinSigned: sinT, bias };
}

/**
 * Log-probability of each target token, [B, T]. A vocabulary larger than `chunkRows` goes through the output
 * projection a chunk at a time (projectedTokenLogProbs) instead of holding [B*T, V] logits.
 */
function pickedLogProbs(b: GraphBuilder, f: { hidden: Value; head: Value[] }, targets: Value, rows?: number): Value {
  const [Bd, Td] = targets.shape as [Dim, Dim];
  const BT = `${Bd}*${Td}`;
  const flat = b.reshape(targets, [BT]);
  const V = f.head.reduce((n, w) => n + (w.shape[0] as number), 0);
  const chunkRows = rows ?? vocabularyChunkRows(V);
  // A device's graphs (which always name their chunk rows) spell log-softmax out: WebGPU has no LogSoftmax kernel.
  const picked = V <= chunkRows ? tokenLogProbs(b, logits(b, f), flat, rows !== undefined) : projectedTokenLogProbs(b, f.hidden, f.head, flat, chunkRows);
  return b.reshape(picked, [Bd, Td]);
}

function gradientOutputs(b: GraphBuilder, loss: Value, params: Map<string, Value>, seed: Value, accumulate = false): void {
  const names = [...params.keys()];
  const grads = b.gradients(loss, names.map((n) => param(params, n)), seed);
  const keep = accumulate ? b.input("accumulate", "bool", []) : null;
  grads.forEach((g, i) => {
    const name = names[i]!;
    const sum = keep ? b.add(b.where(keep, b.input(GraphNames.gradIn(name), b.float, g.shape), b.scalar(0)), g) : g;
    b.output(sum, GraphNames.grad(name));
  });
}

/**
 * SFT step: loss = −Σ mask · log p(target) / max(Σ mask, 1) (losses.ts sftLoss) and the gradients of
 * scale · loss with respect to every parameter. Inputs: parameters, input_ids / targets [B, T] int32,
 * mask [B, T], scale []. Outputs: loss (unscaled), grad.<name>.
 */
export function sftGraph(c: ModelConfig, options: GraphOptions = {}): GraphBuilder {
  const b = new GraphBuilder("llama_sft", options.float);
  const params = declareParams(b, c, undefined, options.blocks);
  const t = trainingInputs(b, c, "B", options.ropeRows);
  const scale = b.input("scale", b.float, []);
  const f = forward(b, c, params, t);
  const picked = pickedLogProbs(b, f, t.targets, options.vocabChunkRows); // [B, T]
  const num = b.reduceSum(b.mul(picked, t.mask), [0, 1], false);
  const den = b.minMax("Max", b.reduceSum(t.mask, [0, 1], false), b.scalar(1));
  const loss = b.div(b.neg(num), den);
  b.output(loss, "loss");
  gradientOutputs(b, loss, params, scale, options.accumulateGradients);
  return b;
}

/**
 * DPO step with the sigmoid loss (dpoLoss.ts): rows 0..B-1 of input_ids / targets / mask [2B, T] are the chosen
 * completions and rows B..2B-1 the rejected ones (one forward pass for both; right padding to a common length
 * changes no real token's log-probability). ref_chosen / ref_rejected [B] are the frozen reference's sequence
 * log-probabilities; beta and scale are scalars. Outputs: loss and TRL's metrics (means over the batch) and
 * the gradients of scale · loss.
 */
export function dpoGraph(c: ModelConfig, options: GraphOptions = {}): GraphBuilder {
  const b = new GraphBuilder("llama_dpo", options.float);
  const params = declareParams(b, c, undefined, options.blocks);
  const t = trainingInputs(b, c, "N", options.ropeRows);
  const refChosen = b.input("ref_chosen", b.float, ["B"]);
  const refRejected = b.input("ref_rejected", b.float, ["B"]);
  const beta = b.input("beta", b.float, []);
  const scale = b.input("scale", b.float, []);
  const f = forward(b, c, params, t);
  const seq = b.reduceSum(b.mul(pickedLogProbs(b, f, t.targets, options.vocabChunkRows), t.mask), [1], false); // [2B]
  const [pcRow, prRow] = b.split(b.reshape(seq, [2, "B"]), 0, [1, 1]);
  const pc = b.reshape(pcRow!, ["B"]);
  const pr = b.reshape(prRow!, ["B"]);
  const chosenRatio = b.sub(pc, refChosen);
  const rejectedRatio = b.sub(pr, refRejected);
  const x = b.mul(b.sub(chosenRatio, rejectedRatio), beta);
  // The batch size as a float, summed from ones where the rest is computed: the WebGPU provider cannot cast
  // the int64 dimension (that Cast ran on the CPU and its result was copied across).
  const count = b.reduceSum(b.expand(b.scalar(1), ["B"]), [0], false);
  const mean = (v: Value): Value => b.div(b.reduceSum(v, [0], false), count);
  // −log σ(x) = softplus(−x), stable for large |x|.
  const loss = mean(b.softplus(b.neg(x)));
  const chosenRewards = b.mul(chosenRatio, beta);
  const rejectedRewards = b.mul(rejectedRatio, beta);
  b.output(loss, DPO_METRIC_OUTPUTS.loss);
  b.output(mean(chosenRewards), DPO_METRIC_OUTPUTS["rewards/chosen"]);
  b.output(mean(rejectedRewards), DPO_METRIC_OUTPUTS["rewards/rejected"]);
  b.output(mean(b.sub(chosenRewards, rejectedRewards)), DPO_METRIC_OUTPUTS["rewards/margins"]);
  b.output(mean(b.cast(b.compare("Greater", chosenRewards, rejectedRewards), b.float)), DPO_METRIC_OUTPUTS["rewards/accuracies"]);
  b.output(mean(pc), DPO_METRIC_OUTPUTS["logps/chosen"]);
  b.output(mean(pr), DPO_METRIC_OUTPUTS["logps/rejected"]);
  gradientOutputs(b, loss, params, scale, options.accumulateGradients);
  return b;
}

/**
 * Log-probabilities for scoring: token_logps [B, T] (every target, unmasked) and seq_logps [B] (Σ over mask,
 * losses.ts sequenceLogProbs). Inputs: parameters, input_ids / targets [B, T] int32, mask [B, T].
 */
export function logProbGraph(c: ModelConfig, options: GraphOptions = {}): GraphBuilder {
  const b = new GraphBuilder("llama_logprobs", options.float);
  const params = declareParams(b, c, options.weights, options.blocks);
  const t = trainingInputs(b, c, "B", options.ropeRows);
  const f = forward(b, c, params, t);
  const picked = pickedLogProbs(b, f, t.targets, options.vocabChunkRows);
  b.output(picked, "token_logps");
  b.output(b.reduceSum(b.mul(picked, t.mask), [1], false), "seq_logps");
  return b;
}

/**
 * One decoding step with a KV cache (also the prompt pass, with P = 0): input_ids [B, T] int32 follow the
 * cached tokens; positions [B, T] int32 index RoPE (left-padded rows count real tokens only); attn_bias
 * [B, 1, T, P+T] hides padding and the future; past_key.<l> / past_value.<l> [B, KV, P, hd].
 * Outputs: logits [B, V] of the last position, present_key.<l> / present_value.<l> [B, KV, P+T, hd].
 * With `options.weights` it is the self-contained inference model users can take to other ONNX tools
 * (inferenceModel.ts).
 */
export function decodeGraph(c: ModelConfig, options: GraphOptions = {}): GraphBuilder {
  return decodingGraph(c, options, "concat");
}

/**
 * Decoding with a fixed-capacity cache that the caller owns and the graph never copies (the engine's form):
 * input_ids / positions [B, T] as in decodeGraph; key_cache.<l> / value_cache.<l> [B, KV, C, hd], whose slots
 * the caller fills and the bias hides until they are; attn_bias [B, 1, T, C+T] over the cache slots then the
 * new tokens (padding, empty slots and the future at −1e9). Outputs: logits [B, V] of the last position and
 * only the new keys and values, new_key.<l> / new_value.<l> [B, KV, T, hd], for the caller to write into its
 * cache. The Concat form copies the whole cache into present_* every step (at batch 64, about a quarter of a
 * step's kernel time, and as much again in garbage for V8 to collect); here a step reads the cache once.
 */
export function bufferedDecodeGraph(c: ModelConfig, options: GraphOptions = {}): GraphBuilder {
  return decodingGraph(c, options, "buffer");
}

function decodingGraph(c: ModelConfig, options: GraphOptions, form: "concat" | "buffer"): GraphBuilder {
  const b = new GraphBuilder(form === "concat" ? "llama_decode" : "llama_decode_buffered", options.float);
  const params = declareParams(b, c, options.weights, options.blocks);
  const hd = headDim(c);
  const KV = c.num_key_value_heads;
  const ids = b.input("input_ids", "int32", ["B", "T"]);
  const positions = b.input("positions", "int32", ["B", "T"]);
  const bias = b.input("attn_bias", b.float, ["B", 1, "T", form === "concat" ? "P+T" : "C+T"]);
  const cache = Array.from({ length: c.num_hidden_layers }, (_, l) =>
    form === "concat"
      ? { k: b.input(GraphNames.pastKey(l), b.float, ["B", KV, "P", hd]), v: b.input(GraphNames.pastValue(l), b.float, ["B", KV, "P", hd]) }
      : { k: b.input(GraphNames.keyCache(l), b.float, ["B", KV, "C", hd]), v: b.input(GraphNames.valueCache(l), b.float, ["B", KV, "C", hd]) },
  );
  const { cos, sinSigned, rows } = signedRopeTables(c, options.ropeRows);
  const table = (data: Float32Array): Value => b.unsqueeze(b.gather(b.constant(data, [rows, hd]), positions), [1]); // [B, 1, T, hd]
  const f = forward(b, c, params, { ids, cos: table(cos), sinSigned: table(sinSigned), bias, ...(form === "concat" ? { past: cache } : { buffer: cache }), lastOnly: true });
  b.output(logits(b, f), "logits");
  const present = f.present;
  present.forEach((kv, l) => {
    b.output(kv.k, form === "concat" ? GraphNames.presentKey(l) : GraphNames.newKey(l));
    b.output(kv.v, form === "concat" ? GraphNames.presentValue(l) : GraphNames.newValue(l));
  });
  return b;
}
