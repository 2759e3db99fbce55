/**
 * The Llama layers' fused ops, each a composite with a hand-written VJP: RMSNorm, SwiGLU, RoPE and per-token
 * log-probabilities. ORT does not fuse element-wise ops, so a composite's backward is several kernels shorter than
 * the chain rule through its pieces would be.
 */
import type { GraphBuilder } from "./graphBuilder";
import type { FloatType, Value } from "./graphRecorder";
import { broadcastShapes, type Dim } from "./symbolicShape";

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
 * VJP: g · (onehot(target) − softmax), the one-hot part added by ScatterElements rather than materialised.
 */
export function tokenLogProbs(b: GraphBuilder, logits: Value, targets: Value): Value {
  const [N, V] = logits.shape as [Dim, Dim];
  const lp = b.emit1("LogSoftmax", [logits], logits.dtype, [N, V], { axis: -1 });
  const t = b.emit1("Unsqueeze", [b.cast(targets, "int64"), b.ints([1])], "int64", [N, 1]);
  const picked = b.emit1("GatherElements", [lp, t], logits.dtype, [N, 1], { axis: 1 });
  const y = b.emit1("Squeeze", [picked, b.ints([1])], logits.dtype, [N]);
  b.composite("TokenLogProbs", [logits], [y], (gs) => {
    const g = b.emit1("Unsqueeze", [gs[0]!, b.ints([1])], logits.dtype, [N, 1]);
    const soft = b.emit1("Exp", [lp], logits.dtype, [N, V]);
    const negSoft = b.emit1("Mul", [soft, b.emit1("Neg", [g], logits.dtype, [N, 1])], logits.dtype, [N, V]);
    return [b.emit1("ScatterElements", [negSoft, t, g], logits.dtype, [N, V], { axis: 1, reduction: "add" })];
  });
  return y;
}
