/**
 * The ops of an ONNX graph, each beside its VJP: element-wise, shape, reduction, linear-algebra and softmax ops
 * on a GraphRecorder. The Llama layers' fused ops (RMSNorm, SwiGLU, RoPE, token log-probabilities) and how a
 * vocabulary is taken in chunks are in ../llama/ (the compiler knows no model).
 */
import { DTYPE_CODE, GraphRecorder, type DType, type FloatType, type Value, type Vjp } from "./graphRecorder";
import { broadcastShapes, dimProduct, dimSum, type Dim } from "./symbolicShape";

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export class GraphBuilder extends GraphRecorder {
  // ---------------------------------------------------------------- non-differentiable ops

  cast(x: Value, to: DType): Value {
    if (x.dtype === to) return x;
    return this.emit1("Cast", [x], to, x.shape, { to: DTYPE_CODE[to] });
  }

  /** Broadcasting comparison or logic op with a bool result. */
  compare(op: "Greater" | "Less" | "Equal" | "GreaterOrEqual" | "LessOrEqual", a: Value, b: Value): Value {
    return this.emit1(op, [a, b], "bool", broadcastShapes(a.shape, b.shape));
  }

  where(cond: Value, a: Value, b: Value): Value {
    return this.emit1("Where", [cond, a, b], a.dtype, broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape)));
  }

  /** Element-wise Min / Max of same-type values (no gradient). */
  minMax(op: "Min" | "Max", a: Value, b: Value): Value {
    return this.emit1(op, [a, b], a.dtype, broadcastShapes(a.shape, b.shape));
  }

  /** int64 range [start, limit) of scalars. */
  range(start: Value, limit: Value, length: Dim): Value {
    return this.emit1("Range", [start, limit, this.intScalar(1)], "int64", [length]);
  }

  unsqueeze(x: Value, axes: readonly number[]): Value {
    const rank = x.rank + axes.length;
    const norm = axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q);
    const shape: Dim[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : (x.shape[k++] as Dim));
    return this.emit1("Unsqueeze", [x, this.ints(norm)], x.dtype, shape, {}, (g, needs) => [needs[0] ? this.reshape(g[0]!, x.shape) : null]);
  }

  squeeze(x: Value, axes: readonly number[]): Value {
    const norm = axes.map((a) => normAxis(a, x.rank));
    const shape = x.shape.filter((_, i) => !norm.includes(i));
    return this.emit1("Squeeze", [x, this.ints(norm)], x.dtype, shape, {}, (g, needs) => [needs[0] ? this.reshape(g[0]!, x.shape) : null]);
  }

  /** x[..., start:end, ...] along one axis; `size` is the result's extent there. No gradient. */
  slice(x: Value, axis: number, start: Value | number, end: Value | number, size: Dim): Value {
    const a = normAxis(axis, x.rank);
    const shape = x.shape.slice();
    shape[a] = size;
    const s = typeof start === "number" ? this.ints([start]) : start;
    const e = typeof end === "number" ? this.ints([end]) : end;
    return this.emit1("Slice", [x, s, e, this.ints([a])], x.dtype, shape);
  }

  expand(x: Value, shape: readonly Dim[]): Value {
    const out = broadcastShapes(x.shape, shape);
    return this.emit1("Expand", [x, this.shapeTensor(shape)], x.dtype, out, {}, (g, needs) => [needs[0] ? this.sumTo(g[0]!, x.shape) : null]);
  }

  /** Σ x² over all elements, a scalar. */
  sumSquares(x: Value): Value {
    return this.emit1("ReduceSumSquare", [x], x.dtype, [], { keepdims: 0 });
  }

  /**
   * The sum of scalars: joined into one vector and reduced. (Not the variadic Sum op: the WebGPU provider has no
   * kernel for it, and a chain of Adds would be one kernel launch per parameter.)
   */
  sumScalars(xs: readonly Value[]): Value {
    if (xs.some((x) => x.rank !== 0)) throw new Error("sumScalars takes scalars");
    if (xs.length === 1) return xs[0]!;
    const joined = this.emit1("Concat", xs.map((x) => this.emit1("Unsqueeze", [x, this.ints([0])], x.dtype, [1])), xs[0]!.dtype, [xs.length], { axis: 0 });
    return this.emit1("ReduceSum", [joined, this.ints([0])], xs[0]!.dtype, [], { keepdims: 0 });
  }

  // ---------------------------------------------------------------- differentiable element-wise ops

  private binary(op: "Add" | "Sub" | "Mul" | "Div", a: Value, b: Value): Value {
    const shape = broadcastShapes(a.shape, b.shape);
    const y: Value = this.emit1(op, [a, b], a.dtype, shape, {}, (gs, needs) => {
      const g = gs[0]!;
      switch (op) {
        case "Add":
          return [needs[0] ? this.sumTo(g, a.shape) : null, needs[1] ? this.sumTo(g, b.shape) : null];
        case "Sub":
          return [needs[0] ? this.sumTo(g, a.shape) : null, needs[1] ? this.neg(this.sumTo(g, b.shape)) : null];
        case "Mul":
          return [needs[0] ? this.sumTo(this.mul(g, b), a.shape) : null, needs[1] ? this.sumTo(this.mul(g, a), b.shape) : null];
        case "Div": {
          const ga = needs[0] || needs[1] ? this.div(g, b) : null;
          // d(a/b)/db = −(a/b)/b: reuses y and g/b rather than forming b².
          return [needs[0] ? this.sumTo(ga!, a.shape) : null, needs[1] ? this.neg(this.sumTo(this.mul(ga!, y), b.shape)) : null];
        }
      }
    });
    return y;
  }

  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary("Div", a, b);
  }

  neg(x: Value): Value {
    return this.emit1("Neg", [x], x.dtype, x.shape, {}, (g, needs) => [needs[0] ? this.neg(g[0]!) : null]);
  }

  exp(x: Value): Value {
    const y: Value = this.emit1("Exp", [x], x.dtype, x.shape, {}, (g) => [this.mul(g[0]!, y)]);
    return y;
  }

  log(x: Value): Value {
    return this.emit1("Log", [x], x.dtype, x.shape, {}, (g) => [this.div(g[0]!, x)]);
  }

  sqrt(x: Value): Value {
    const y: Value = this.emit1("Sqrt", [x], x.dtype, x.shape, {}, (g) => [this.div(this.mul(g[0]!, this.scalar(0.5, x.dtype as FloatType)), y)]);
    return y;
  }

  reciprocal(x: Value): Value {
    const y: Value = this.emit1("Reciprocal", [x], x.dtype, x.shape, {}, (g) => [this.neg(this.mul(g[0]!, this.mul(y, y)))]);
    return y;
  }

  sigmoid(x: Value): Value {
    const y: Value = this.emit1("Sigmoid", [x], x.dtype, x.shape, {}, (g) => [this.mul(g[0]!, this.mul(y, this.sub(this.scalar(1, x.dtype as FloatType), y)))]);
    return y;
  }

  /** log(1 + eˣ). ORT has Softplus for float32 only; float64 uses the stable max(x,0) + log(1 + e^−|x|). */
  softplus(x: Value): Value {
    const vjp: Vjp = (g) => [this.mul(g[0]!, this.sigmoid(x))];
    if (x.dtype === "float32") return this.emit1("Softplus", [x], x.dtype, x.shape, {}, vjp);
    const relu = this.emit1("Relu", [x], x.dtype, x.shape);
    const absX = this.emit1("Abs", [x], x.dtype, x.shape);
    const negAbs = this.emit1("Neg", [absX], x.dtype, x.shape);
    const ex = this.emit1("Exp", [negAbs], x.dtype, x.shape);
    const l = this.emit1("Log", [this.emit1("Add", [ex, this.scalar(1, x.dtype as FloatType)], x.dtype, x.shape)], x.dtype, x.shape);
    const y = this.emit1("Add", [relu, l], x.dtype, x.shape);
    this.composite("Softplus", [x], [y], vjp);
    return y;
  }

  // ---------------------------------------------------------------- shape ops

  reshape(x: Value, shape: readonly Dim[]): Value {
    if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
    return this.emit1("Reshape", [x, this.shapeTensor(shape)], x.dtype, shape, {}, (g, needs) => [needs[0] ? this.reshape(g[0]!, x.shape) : null]);
  }

  transpose(x: Value, perm: readonly number[]): Value {
    const inv = perm.map((_, i) => perm.indexOf(i));
    return this.emit1("Transpose", [x], x.dtype, perm.map((p) => x.shape[p] as Dim), { perm: perm.slice() }, (g, needs) => [needs[0] ? this.transpose(g[0]!, inv) : null]);
  }

  concat(xs: readonly Value[], axis: number): Value {
    const a = normAxis(axis, xs[0]!.rank);
    const shape = xs[0]!.shape.slice();
    shape[a] = xs.map((x) => x.shape[a] as Dim).reduce(dimSum);
    return this.emit1("Concat", xs, xs[0]!.dtype, shape, { axis: a }, (g) => this.split(g[0]!, a, xs.map((x) => x.shape[a] as Dim)));
  }

  split(x: Value, axis: number, sizes: readonly Dim[]): Value[] {
    const a = normAxis(axis, x.rank);
    const outs = sizes.map((s) => {
      const shape = x.shape.slice();
      shape[a] = s;
      return { dtype: x.dtype, shape };
    });
    const splitSizes = sizes.every((s) => typeof s === "number") ? this.ints(sizes as number[]) : this.emit1("Concat", sizes.map((s) => this.dim(s)), "int64", [sizes.length], { axis: 0 });
    return this.emit("Split", [x, splitSizes], outs, { axis: a }, undefined, (gs) => [this.concat(gs.map((g, i) => g ?? this.zeros(outs[i]!.shape, x.dtype)), a)]);
  }

  /** Sums a broadcast gradient back to `shape`. */
  sumTo(g: Value, shape: readonly Dim[]): Value {
    const lead = g.rank - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    if (axes.length === 0) return g;
    const keep = this.reduceSum(g, axes, true);
    return lead > 0 ? this.reshape(keep, shape) : keep;
  }

  // ---------------------------------------------------------------- reductions

  reduceSum(x: Value, axes: readonly number[], keepdims: boolean): Value {
    const norm = axes.map((a) => normAxis(a, x.rank));
    const shape = keepdims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
    // Opset 13–17: ReduceSum takes its axes as an input (ReduceMean still as an attribute).
    return this.emit1("ReduceSum", [x, this.ints(norm)], x.dtype, shape, { keepdims: keepdims ? 1 : 0 }, (g, needs) => [needs[0] ? this.expand(keepdims ? g[0]! : this.unsqueeze(g[0]!, norm), x.shape) : null]);
  }

  reduceMean(x: Value, axes: readonly number[], keepdims: boolean): Value {
    const norm = axes.map((a) => normAxis(a, x.rank));
    const shape = keepdims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
    return this.emit1("ReduceMean", [x], x.dtype, shape, { axes: norm, keepdims: keepdims ? 1 : 0 }, (g, needs) => {
      if (!needs[0]) return [null];
      const count = dimProduct(norm.map((a) => x.shape[a] as Dim));
      if (typeof count !== "number") throw new Error("ReduceMean over symbolic dimensions has no gradient rule here");
      return [this.expand(this.mul(keepdims ? g[0]! : this.unsqueeze(g[0]!, norm), this.scalar(1 / count, x.dtype as FloatType)), x.shape)];
    });
  }

  // ---------------------------------------------------------------- linear algebra

  /** Batched a [..., M, K] @ b [..., K, N] with broadcast batch dimensions. */
  matmul(a: Value, b: Value): Value {
    if (a.rank < 2 || b.rank < 2) throw new Error("matmul needs rank ≥ 2");
    if (a.shape[a.rank - 1] !== b.shape[b.rank - 2]) throw new Error(`matmul [${a.shape}] @ [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const shape = [...batch, a.shape[a.rank - 2] as Dim, b.shape[b.rank - 1] as Dim];
    return this.emit1("MatMul", [a, b], a.dtype, shape, {}, (gs, needs) => {
      const g = gs[0]!;
      return [needs[0] ? this.sumTo(this.matmul(g, this.swapLast(b)), a.shape) : null, needs[1] ? this.sumTo(this.matmul(this.swapLast(a), g), b.shape) : null];
    });
  }

  private swapLast(x: Value): Value {
    const perm = x.shape.map((_, i) => i);
    perm[x.rank - 2] = x.rank - 1;
    perm[x.rank - 1] = x.rank - 2;
    return this.transpose(x, perm);
  }

  /**
   * op(a) @ op(b) (+ c) for 2-D a, b; op transposes when asked. `c` is added by the Gemm itself: a residual
   * connection of the result's shape [M, N], or a bias [N] broadcast over rows, without a separate Add kernel.
   */
  gemm(a: Value, b: Value, transA = false, transB = false, c?: Value): Value {
    if (a.rank !== 2 || b.rank !== 2) throw new Error("gemm needs 2-D operands");
    const [m, k1] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [k2, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (k1 !== k2) throw new Error(`gemm inner dimensions ${k1} vs ${k2}`);
    if (c && !(c.rank === 2 && c.shape[0] === m && c.shape[1] === n) && !(c.rank === 1 && c.shape[0] === n)) throw new Error(`gemm addend [${c.shape}] is neither [${m},${n}] nor [${n}]`);
    return this.emit1("Gemm", c ? [a, b, c] : [a, b], a.dtype, [m, n], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, (gs, needs) => {
      const g = gs[0]!;
      // With A' = op(a), B' = op(b): dA' = g B'ᵀ and dB' = A'ᵀ g, transposed back where op transposed.
      const ga = !needs[0] ? null : transA ? this.gemm(b, g, transB, true) : this.gemm(g, b, false, !transB);
      const gb = !needs[1] ? null : transB ? this.gemm(g, a, true, transA) : this.gemm(a, g, !transA, false);
      // A bias's gradient sums the rows it was broadcast over.
      return [ga, gb, needs[2] ? this.sumTo(g, c!.shape) : null];
    });
  }

  /**
   * Embedding lookup: rows of data [V, ...] at integer indices. The gradient adds each row of g into its index's
   * row of zeros [V, ...] by ScatterElements with the "add" reduction, the indices spread over the row's width.
   * On the CPU that op applies the updates one after another on one thread, so repeated indices sum in token
   * order, the same on every run (not ScatterND's "add": ONNX Runtime splits it over threads and repeated rows
   * race, embedding gradients 1e-2 apart between two runs on 2 threads). On WebGPU the adds are atomic, in the
   * GPU's order between repeated indices (float32 rounding may differ between runs).
   * It replaced Unique → one-hot [N, U] → onehotᵀ · g → ScatterND, which the WebGPU provider cannot run (no
   * Unique kernel, no int64 comparisons: they ran on the CPU and the one-hot was copied to the GPU at every
   * step); on the CPU it is as fast or faster (measured at 1,024–4,096 tokens × 576 wide, 49,152 rows). Not a
   * one-hot over the whole vocabulary: at SmolLM2's 49,152 rows and 1,024 tokens that product was 58 GFLOP,
   * 6% of an SFT step.
   */
  gather(data: Value, indices: Value): Value {
    const shape = [...indices.shape, ...data.shape.slice(1)];
    return this.emit1("Gather", [data, indices], data.dtype, shape, { axis: 0 }, (gs, needs) => {
      if (!needs[0]) return [null, null];
      const V = data.shape[0]!;
      const rest = data.shape.slice(1);
      const width = dimProduct(rest);
      const n = dimProduct(indices.shape);
      const ids = this.reshape(this.int32(indices), [n]);
      const index = this.expand(this.unsqueeze(ids, [1]), [n, width]); // [N, width]: each element's row
      const zeros = this.expand(this.scalar(0, data.dtype as FloatType), [V, width]);
      const grad = this.emit1("ScatterElements", [zeros, index, this.reshape(gs[0]!, [n, width])], data.dtype, [V, width], { axis: 0, reduction: "add" });
      return [this.reshape(grad, data.shape), null];
    });
  }

  /** Integer ids as int32, the index type every provider computes with (see GraphRecorder.int32Scalar). */
  int32(x: Value): Value {
    return x.dtype === "int32" ? x : this.cast(x, "int32");
  }

  // ---------------------------------------------------------------- softmax family

  softmax(x: Value): Value {
    const y: Value = this.emit1("Softmax", [x], x.dtype, x.shape, { axis: -1 }, (gs) => {
      const g = gs[0]!;
      return [this.mul(y, this.sub(g, this.reduceSum(this.mul(g, y), [-1], true)))];
    });
    return y;
  }

  logSoftmax(x: Value): Value {
    const y: Value = this.emit1("LogSoftmax", [x], x.dtype, x.shape, { axis: -1 }, (gs) => {
      const g = gs[0]!;
      return [this.sub(g, this.mul(this.exp(y), this.reduceSum(g, [-1], true)))];
    });
    return y;
  }
}
