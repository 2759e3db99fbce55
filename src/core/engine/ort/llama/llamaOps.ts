/**
 * The Llama layers' fused ops, each a composite with a hand-written VJP: RMSNorm, SwiGLU, RoPE and per-token
 * log-probabilities (from logits, or from the hidden states through the output projection a vocabulary chunk at a
 * time). ORT does not fuse element-wise ops, so a composite's backward is several kernels shorter than the chain
 * rule through its pieces would be.
 */
import type { GraphBuilder } from "../onnx/graphBuilder";
import { VOCAB_CHUNK_ROWS, vocabularyChunks } from "./vocabularyChunks";
import { rowsWithin } from "./rowBlocks";
import type { FloatType, Value } from "../onnx/graphRecorder";
import { broadcastShapes, type Dim } from "../onnx/symbolicShape";

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w, x [..., D], w [D]. */
export function rmsNorm(b: GraphBuilder, x: Value, w: Value, eps: number): Value {
  const D = x.shape[x.rank - 1]!;
  if (typeof D !== "number") throw new Error("rmsNorm needs a fixed last dimension");
  // mean(x²) as Σx² · (1/D): one pass over x instead of a square then a mean (the same value when D is a
  // power of two, within an ulp otherwise).
  const rowShape = [...x.shape.slice(0, -1), 1];
  const sumSq = b.emit1("ReduceSumSquare", [x], x.dtype, rowShape, { axes: [x.rank - 1], keepdims: 1 });
  const ms = b.emit1("Mul", [sumSq, b.scalar(1 / (D as number), x.dtype as FloatType)], x.dtype, rowShape);
  const r = b.emit1("Reciprocal", [b.emit1("Sqrt", [b.emit1("Add", [ms, b.scalar(eps, x.dtype as FloatType)], x.dtype, ms.shape)], x.dtype, ms.shape)], x.dtype, ms.shape); // [..., 1]
  const xn = b.emit1("Mul", [x, r], x.dtype, x.shape);
  const y = b.emit1("Mul", [xn, w], x.dtype, x.shape);
  b.composite("RMSNorm", [x, w], [y], (gs, needs) => {
    const g = gs[0]!;
    const raw = (op: string, p: Value, q: Value, shape: readonly Dim[] = x.shape): Value => b.emit1(op, [p, q], x.dtype, shape);
    let gw: Value | null = null;
    if (needs[1]) {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      gw = b.emit1("ReduceSum", [raw("Mul", g, xn), b.ints(axes)], x.dtype, [D], { keepdims: 0 });
    }
    let gx: Value | null = null;
    if (needs[0]) {
      // dx = r · (gxn − xn · mean(gxn · xn)), with gxn = g · w.
      const gxn = raw("Mul", g, w);
      const m = b.emit1("ReduceMean", [raw("Mul", gxn, xn)], x.dtype, ms.shape, { axes: [x.rank - 1], keepdims: 1 });
      gx = raw("Mul", raw("Sub", gxn, raw("Mul", xn, m)), r);
    }
    return [gx, gw];
  });
  return y;
}

/** SwiGLU: silu(gate) · up, as gate · σ(gate) · up (TensorFlow.js's order of products). */
export function swiglu(b: GraphBuilder, gate: Value, up: Value): Value {
  const s = b.emit1("Sigmoid", [gate], gate.dtype, gate.shape);
  const a = b.emit1("Mul", [gate, s], gate.dtype, gate.shape);
  const y = b.emit1("Mul", [a, up], gate.dtype, broadcastShapes(a.shape, up.shape));
  b.composite("SwiGLU", [gate, up], [y], (gs, needs) => {
    const g = gs[0]!;
    const raw = (op: string, p: Value, q: Value): Value => b.emit1(op, [p, q], gate.dtype, gate.shape);
    // d silu(x)/dx = σ + x·σ·(1 − σ) = σ + a − a·σ.
    const gGate = needs[0] ? raw("Mul", raw("Mul", g, up), raw("Add", s, raw("Sub", a, raw("Mul", a, s)))) : null;
    const gUp = needs[1] ? raw("Mul", g, a) : null;
    return [gGate, gUp];
  });
  return y;
}

/**
 * Rotary embedding with Hugging Face's rotate_half: x·cos + rotate_half(x)·sin, x [..., hd]. `sinSigned` is
 * sin with its first half negated, so rotate_half is a swap of halves: swap(x)·sinSigned = concat(−x2, x1)·sin.
 * The swap is its own transpose, so dx = g·cos + swap(g·sinSigned). cos and sin are inputs without gradient.
 */
export function rope(b: GraphBuilder, x: Value, cos: Value, sinSigned: Value): Value {
  const half = (x.shape[x.rank - 1] as number) / 2;
  const swap = (v: Value): Value => {
    const parts = b.emit("Split", [v, b.ints([half, half])], [{ dtype: v.dtype, shape: [...v.shape.slice(0, -1), half] }, { dtype: v.dtype, shape: [...v.shape.slice(0, -1), half] }], { axis: v.rank - 1 });
    return b.emit1("Concat", [parts[1]!, parts[0]!], v.dtype, v.shape, { axis: v.rank - 1 });
  };
  const shape = broadcastShapes(x.shape, cos.shape);
  const y = b.emit1("Add", [b.emit1("Mul", [x, cos], x.dtype, shape), b.emit1("Mul", [swap(x), sinSigned], x.dtype, shape)], x.dtype, shape);
  b.composite("RoPE", [x], [y], (gs) => {
    const g = gs[0]!;
    return [b.emit1("Add", [b.emit1("Mul", [g, cos], x.dtype, shape), swap(b.emit1("Mul", [g, sinSigned], x.dtype, shape))], x.dtype, shape)];
  });
  return y;
}

/**
 * log softmax(logits)[target] per row: logits [N, V], targets [N] (int32/int64) → [N].
 * `spelledOut` false (the CPU's graphs): the LogSoftmax op. true (a device's graphs): the WebGPU provider has no
 * kernel for LogSoftmax, so the [N, V] logits went to the CPU and the log-probabilities came back at every step;
 * there it is spelled as TensorFlow.js spells logSoftmax: shifted = x − max(x), log p = shifted − log Σ exp(shifted),
 * so the two engines round alike. On the CPU that form costs about a quarter more than LogSoftmax over the logits
 * (512 × 49,152: 142 against 111 ms on one thread), which is why the CPU keeps the op. (The softmax as
 * exp(shifted) / Σ, kept from the forward pass, rounded unlike TF.js and moved qwen3's gradient norms in the AdamW
 * parity test of conformance.test.ts past its 1e-5.)
 * VJP: g · (onehot(target) − softmax), softmax = exp(log p), the one-hot part added by ScatterElements rather
 * than materialised.
 */
export function tokenLogProbs(b: GraphBuilder, logits: Value, targets: Value, spelledOut = false): Value {
  const [N, V] = logits.shape as [Dim, Dim];
  const f = logits.dtype as FloatType;
  const col: Dim[] = [N, 1];
  // int32 indices: the WebGPU provider has no int64 Unsqueeze (GraphRecorder.int32Scalar).
  const t = b.emit1("Unsqueeze", [b.int32(targets), b.ints([1])], "int32", col);
  let logp: Value;
  let y: Value;
  if (spelledOut) {
    const m = b.emit1("ReduceMax", [logits], f, col, { axes: [1], keepdims: 1 });
    const shifted = b.emit1("Sub", [logits, m], f, [N, V]);
    const logSum = b.emit1("Log", [b.emit1("ReduceSum", [b.emit1("Exp", [shifted], f, [N, V]), b.ints([1])], f, col, { keepdims: 1 })], f, col);
    const picked = b.emit1("GatherElements", [shifted, t], f, col, { axis: 1 });
    y = b.emit1("Squeeze", [b.emit1("Sub", [picked, logSum], f, col), b.ints([1])], f, [N]);
    logp = b.emit1("Sub", [shifted, logSum], f, [N, V]);
  } else {
    logp = b.emit1("LogSoftmax", [logits], f, [N, V], { axis: -1 });
    y = b.emit1("Squeeze", [b.emit1("GatherElements", [logp, t], f, col, { axis: 1 }), b.ints([1])], f, [N]);
  }
  b.composite("TokenLogProbs", [logits], [y], (gs) => {
    const g = b.emit1("Unsqueeze", [gs[0]!, b.ints([1])], f, col);
    const soft = b.emit1("Exp", [logp], f, [N, V]);
    const negSoft = b.emit1("Mul", [soft, b.emit1("Neg", [g], f, col)], f, [N, V]);
    return [b.emit1("ScatterElements", [negSoft, t, g], f, [N, V], { axis: 1, reduction: "add" })];
  });
  return y;
}

/**
 * log softmax(h · wᵀ)[target] per row without the [N, V] logits: h [N, D], w [V, D] (the output projection, or
 * the tied embedding), targets [N] → [N]. The vocabulary is taken `chunkRows` rows of w at a time
 * (vocabularyChunks): each chunk's logits [N, rows] give a log-sum-exp [N, 1] and are dropped; the chunks'
 * log-sum-exps combine into lse. The target's logit is h · w[target], a [N, D] gather.
 *
 * The VJP recomputes each chunk's logits rather than keeping them: with s = softmax − onehot(target),
 * dh = −g · Σ_k s_k w_k and dw_k = s_kᵀ (−g · h), g [N, 1] scaling the [N, D] operands instead of the chunks.
 * ONNX Runtime runs a graph in a depth-first order from its outputs, so a chunk's s_k, which two Gemms read, is
 * made to come after the previous chunk's two Gemms by a zero-valued dependency (see `previous`); otherwise every
 * chunk's s_k would be computed first and all held at once (measured with Qwen's vocabulary at 1,280 tokens:
 * 0.9 GB more at the peak). An SFT step of a hidden-32 model with that vocabulary peaked at 6.8 GB with whole
 * logits and at 0.72 GB so, for about a third more time on the CPU (one more Gemm per chunk).
 */
export function projectedTokenLogProbs(b: GraphBuilder, h: Value, w: Value | Value[], targets: Value, chunkRows: number = VOCAB_CHUNK_ROWS): Value {
  const [N, D] = h.shape as [Dim, Dim];
  // w in row blocks (a table larger than one GPU buffer, llamaGraphs RowBlocks): chunks are taken within blocks.
  const blocks = Array.isArray(w) ? w : [w];
  const sizes = blocks.map((x) => x.shape[0]!);
  if (sizes.some((n) => typeof n !== "number") || typeof D !== "number") throw new Error("projectedTokenLogProbs needs a fixed vocabulary and width");
  const starts = (sizes as number[]).map((_, k) => (sizes as number[]).slice(0, k).reduce((a, n) => a + n, 0));
  const f = h.dtype as FloatType;
  const col: Dim[] = [N, 1];
  /** A chunk: rows start … start+size of the whole table, in block `block` from row `local`. */
  type Chunk = { start: number; size: number; block: number; local: number };
  const chunks: Chunk[] = (sizes as number[]).flatMap((n, k) => vocabularyChunks(n, chunkRows).map((c) => ({ start: starts[k]! + c.start, size: c.size, block: k, local: c.start })));
  const rows = (c: Chunk): Value => {
    const block = blocks[c.block]!;
    return c.local === 0 && c.size === sizes[c.block] ? block : b.emit1("Slice", [block, b.ints([c.local]), b.ints([c.local + c.size]), b.ints([0])], f, [c.size, D]);
  };
  // Stable log-sum-exp over the last axis: max + log Σ exp(x − max). (Not ReduceLogSumExp: not every provider subtracts the max.)
  const logSumExp = (x: Value): Value => {
    const m = b.emit1("ReduceMax", [x], f, col, { axes: [1], keepdims: 1 });
    const e = b.emit1("Exp", [b.emit1("Sub", [x, m], f, x.shape)], f, x.shape);
    const s = b.emit1("ReduceSum", [e, b.ints([1])], f, col, { keepdims: 1 });
    return b.emit1("Add", [b.emit1("Log", [s], f, col), m], f, col);
  };
  const partial = chunks.map((c) => logSumExp(b.emit1("Gemm", [h, rows(c)], f, [N, c.size], { transB: 1 }))); // each [N, 1]
  const lse = partial.length === 1 ? partial[0]! : logSumExp(b.emit1("Concat", partial, f, [N, partial.length], { axis: 1 }));
  // int32 ids: the WebGPU provider has no int64 arithmetic, comparisons or Unsqueeze (rowsWithin).
  const t = b.int32(targets);
  const tCol = b.emit1("Unsqueeze", [t, b.ints([1])], "int32", col);
  // The target's row of w: from its block (ids clamped into each block, rows of other blocks zeroed).
  const targetRows = blocks.length === 1
    ? b.emit1("Gather", [blocks[0]!, t], f, [N, D], { axis: 0 })
    : blocks
        .map((block, k) => {
          const { inside, index } = rowsWithin(b, t, starts[k]!, sizes[k] as number);
          const mask = b.emit1("Unsqueeze", [b.cast(inside, f), b.ints([1])], f, col);
          return b.emit1("Mul", [b.emit1("Gather", [block, index], f, [N, D], { axis: 0 }), mask], f, [N, D]);
        })
        .reduce((x, y) => b.emit1("Add", [x, y], f, [N, D]));
  const picked = b.emit1("ReduceSum", [b.emit1("Mul", [h, targetRows], f, [N, D]), b.ints([1])], f, col, { keepdims: 1 });
  const y = b.emit1("Squeeze", [b.emit1("Sub", [picked, lse], f, col), b.ints([1])], f, [N]);
  b.composite("ProjectedTokenLogProbs", [h, ...blocks], [y], (gs, needs) => {
    // d log p / d logits = onehot − softmax = −s: the sign goes with g.
    const negG = b.emit1("Neg", [b.emit1("Unsqueeze", [gs[0]!, b.ints([1])], f, col)], f, col);
    const gh = needs.slice(1).some((x) => x) ? b.emit1("Mul", [h, negG], f, [N, D]) : null;
    const negLse = b.emit1("Neg", [lse], f, col);
    const zero = b.scalar(0, f);
    const minusOne = b.scalar(-1, f);
    let acc: Value | null = null; // Σ_k s_k w_k, [N, D]
    const dw: Value[][] = blocks.map(() => []); // per block, its chunks' dw [rows, D]
    let previous: Value[] = [];
    for (const c of chunks) {
      const wk = rows(c);
      // The previous chunk's results enter this chunk's first node, as a zero (a [1, 1] corner of each) added to
      // h: so its whole backward runs before this chunk's logits exist. ORT visits the input made last first, so
      // w's slice is taken after the previous chunk, not held through it.
      let hk = h;
      if (previous.length > 0) {
        const corners = previous.map((v) => b.emit1("Slice", [v, b.ints([0, 0]), b.ints([1, 1]), b.ints([0, 1])], f, [1, 1]));
        const dep = corners.reduce((p, q) => b.emit1("Add", [p, q], f, [1, 1]));
        hk = b.emit1("Add", [h, b.emit1("Mul", [dep, zero], f, [1, 1])], f, [N, D]);
      }
      // logits − lse in the Gemm (its addend broadcast over columns), then softmax = exp of that.
      const soft = b.emit1("Exp", [b.emit1("Gemm", [hk, wk, negLse], f, [N, c.size], { transB: 1 })], f, [N, c.size]);
      // − onehot: −1 at the target's column in rows whose target falls in this chunk (column 0 gets + 0 elsewhere).
      const { inside: inChunk, index } = rowsWithin(b, tCol, c.start, c.size);
      const update = b.emit1("Where", [inChunk, minusOne, zero], f, col);
      const s = b.emit1("ScatterElements", [soft, index, update], f, [N, c.size], { axis: 1, reduction: "add" });
      previous = [];
      if (gh) {
        const dwk = b.emit1("Gemm", [s, gh], f, [c.size, D], { transA: 1 });
        dw[c.block]!.push(dwk);
        previous.push(dwk);
      }
      if (needs[0]) {
        acc = b.emit1("Gemm", acc ? [s, wk, acc] : [s, wk], f, [N, D]);
        previous.push(acc);
      }
    }
    const dh = needs[0] ? b.emit1("Mul", [acc!, negG], f, [N, D]) : null;
    const dW = blocks.map((_, k) => (gh && needs[k + 1] ? (dw[k]!.length === 1 ? dw[k]![0]! : b.emit1("Concat", dw[k]!, f, [sizes[k]!, D], { axis: 0 })) : null));
    return [dh, ...dW];
  });
  return y;
}
