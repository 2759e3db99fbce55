/**
 * A typed builder of ONNX graphs (opset 17, standard ops only) with a small reverse-mode autodiff.
 *
 * Why our own autodiff: the stock onnxruntime-node build has no training ops (SoftmaxGrad, GeluGrad … are
 * rejected), so every backward formula must be spelled in basic ops. Each differentiable helper records a VJP
 * rule on a tape; `gradients()` walks the tape backwards. Composite helpers (rmsNorm, swiglu, rope,
 * tokenLogProbs) carry hand-written VJPs because ORT does not fuse element-wise ops: a composite backward
 * is several kernels shorter than the chain rule through its pieces.
 *
 * Shapes are tracked symbolically: a dimension is a number or a name ("B", "T", "P+T", "B*T") bound at run
 * time, so one graph serves every batch size and length, and broadcasting in VJPs is resolved when the graph
 * is built rather than with shape arithmetic in the graph.
 */
import {
  AttributeType,
  OnnxDataType,
  encodeModel,
  rawLittleEndian,
  type AttributeProtoJson,
  type NodeProtoJson,
  type OnnxDataTypeCode,
  type TensorProtoJson,
  type ValueInfoProtoJson,
} from "./onnxProto";

export type FloatType = "float32" | "float64";
export type DType = FloatType | "int32" | "int64" | "bool";
export type Dim = number | string;

/** A symbolic tensor: the name of a graph value, its element type and its (possibly symbolic) shape. */
export class Value {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
  ) {}
  get rank(): number {
    return this.shape.length;
  }
}

/** Attribute values: integers and integer lists are INT/INTS; floats must say so, since 1.0 === 1 in JS. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: TensorProtoJson };

type Vjp = (grads: ReadonlyArray<Value | null>, needs: readonly boolean[]) => Array<Value | null>;

interface TapeEntry {
  op: string;
  inputs: Value[];
  outputs: Value[];
  /** null: not differentiable (a gradient reaching it from a value that needs one is an error). */
  vjp: Vjp | null;
}

const DTYPE_CODE: Record<DType, OnnxDataTypeCode> = {
  float32: OnnxDataType.FLOAT,
  float64: OnnxDataType.DOUBLE,
  int32: OnnxDataType.INT32,
  int64: OnnxDataType.INT64,
  bool: OnnxDataType.BOOL,
};

export const OPSET = 17;

function isFloat(t: DType): t is FloatType {
  return t === "float32" || t === "float64";
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** NumPy broadcasting of two symbolic shapes; unequal symbols cannot be proven compatible and are refused. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new Error(`cannot broadcast [${a.join(",")}] with [${b.join(",")}]`);
  }
  return out;
}

function dimProduct(dims: readonly Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === "number") n *= d;
    else syms.push(d.includes("+") ? `(${d})` : d);
  }
  if (syms.length === 0) return n;
  return n === 1 ? syms.join("*") : [String(n), ...syms].join("*");
}

/** a + b in a canonical form (terms sorted, numbers folded), so P+T and T+P are the same dimension. */
function dimSum(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  const terms = [a, b].flatMap((d) => (typeof d === "number" ? [String(d)] : topLevelSplit(d, "+")));
  const n = terms.filter((t) => /^\d+$/.test(t)).reduce((acc, t) => acc + Number(t), 0);
  const syms = terms.filter((t) => !/^\d+$/.test(t)).sort();
  return [...syms, ...(n ? [String(n)] : [])].join("+");
}

export class GraphBuilder {
  private readonly nodes: NodeProtoJson[] = [];
  private readonly initializers: TensorProtoJson[] = [];
  private readonly graphInputs: ValueInfoProtoJson[] = [];
  private readonly graphOutputs: ValueInfoProtoJson[] = [];
  private readonly tape: TapeEntry[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  /** Where a symbolic dimension can be read at run time: the first graph input that declares it. */
  private readonly dimSources = new Map<string, { value: Value; axis: number }>();
  private readonly cache = new Map<string, Value>();
  /** The node that computes each value, by value id (for the accumulation peephole in gradients()). */
  private readonly producers = new Map<number, NodeProtoJson>();
  /** Internal value name → graph output name, for outputs named on their producing node (see output()). */
  private readonly aliases = new Map<string, string>();
  private differentiated = false;

  constructor(
    readonly graphName: string,
    /** The floating type of activations and parameters (float64 for gradient checks). */
    readonly float: FloatType = "float32",
  ) {}

  // ---------------------------------------------------------------- graph structure

  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    if (this.used.has(name)) throw new Error(`duplicate graph input ${name}`);
    const v = this.value(dtype, shape, name);
    shape.forEach((d, axis) => {
      if (typeof d === "string" && !/[+*]/.test(d) && !this.dimSources.has(d)) this.dimSources.set(d, { value: v, axis });
    });
    this.graphInputs.push(this.valueInfo(v));
    return v;
  }

  /**
   * Declares `v` a graph output under `name`. A value computed by a node is renamed: its producer writes the
   * output itself (the alias is applied when the graph is serialized, so nodes already emitted or emitted later
   * that read `v` follow it). An Identity copies it only when renaming cannot: `v` is a graph input or a
   * constant, or already an output under another name. The copy is not free: a decode step's KV cache passed
   * through Identity nodes cost a fifth of its kernel time.
   */
  output(v: Value, name: string): Value {
    if (v.name === name) {
      this.graphOutputs.push(this.valueInfo(v));
      return v;
    }
    if (this.used.has(name)) throw new Error(`output name ${name} is taken`);
    const renamable = this.producers.has(v.id) && !this.aliases.has(v.name) && !this.graphOutputs.some((o) => o.name === v.name);
    if (!renamable) {
      const out = this.emit("Identity", [v], [{ dtype: v.dtype, shape: v.shape }], {}, name)[0]!;
      this.graphOutputs.push(this.valueInfo(out));
      return out;
    }
    this.used.add(name);
    this.aliases.set(v.name, name);
    const out = new Value(v.id, name, v.dtype, v.shape);
    this.graphOutputs.push(this.valueInfo(out));
    return out;
  }

  /** The serialized model. */
  toBytes(producer = "self-training-studio"): Uint8Array {
    const rename = (names: string[]): string[] => names.map((n) => this.aliases.get(n) ?? n);
    const node = this.aliases.size === 0 ? this.nodes : this.nodes.map((n) => ({ ...n, input: rename(n.input), output: rename(n.output) }));
    return encodeModel({
      ir_version: 8,
      producer_name: producer,
      opset_import: [{ domain: "", version: OPSET }],
      graph: { name: this.graphName, node, initializer: this.initializers, input: this.graphInputs, output: this.graphOutputs },
    });
  }

  /** Node count by op type: for tests and for reading what a graph costs. */
  opCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const n of this.nodes) m.set(n.op_type, (m.get(n.op_type) ?? 0) + 1);
    return m;
  }

  private uniqueName(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private value(dtype: DType, shape: readonly Dim[], name?: string): Value {
    const n = this.uniqueName(name ?? "v");
    return new Value(this.counter++, n, dtype, shape.slice());
  }

  private valueInfo(v: Value): ValueInfoProtoJson {
    return {
      name: v.name,
      type: { tensor_type: { elem_type: DTYPE_CODE[v.dtype], shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: dimParam(d) })) } } },
    };
  }

  /** Adds one node; outputs get fresh names. Recorded on the tape as non-differentiable unless `vjp` is given. */
  emit(opType: string, inputs: ReadonlyArray<Value | null>, outputs: ReadonlyArray<{ dtype: DType; shape: readonly Dim[] }>, attrs: Record<string, AttrValue> = {}, outName?: string, vjp: Vjp | null = null): Value[] {
    const outs = outputs.map((o) => this.value(o.dtype, o.shape, outName ?? `${opType}_${this.counter}`));
    const node: NodeProtoJson = {
      input: inputs.map((v) => (v ? v.name : "")),
      output: outs.map((o) => o.name),
      name: this.uniqueName(`n_${opType}_${this.counter}`),
      op_type: opType,
      attribute: Object.entries(attrs).map(([name, a]) => encodeAttr(name, a)),
    };
    this.nodes.push(node);
    for (const o of outs) this.producers.set(o.id, node);
    this.tape.push({ op: opType, inputs: inputs.filter((v): v is Value => v !== null), outputs: outs, vjp });
    return outs;
  }

  private emit1(opType: string, inputs: ReadonlyArray<Value | null>, dtype: DType, shape: readonly Dim[], attrs: Record<string, AttrValue> = {}, vjp: Vjp | null = null): Value {
    return this.emit(opType, inputs, [{ dtype, shape }], attrs, undefined, vjp)[0]!;
  }

  /** Records a differentiable composite: `outputs` were computed from `inputs` by nodes emitted meanwhile. */
  private composite(op: string, inputs: Value[], outputs: Value[], vjp: Vjp): void {
    this.tape.push({ op, inputs, outputs, vjp });
  }

  // ---------------------------------------------------------------- constants and shapes

  /** A float constant of the graph's float type (raw little-endian bytes). */
  constant(data: ArrayLike<number>, shape: readonly number[], dtype: FloatType = this.float): Value {
    const v = this.value(dtype, shape, "const");
    const arr = dtype === "float32" ? Float32Array.from(data) : Float64Array.from(data);
    this.initializers.push({ name: v.name, dims: shape.slice(), data_type: DTYPE_CODE[dtype], raw_data: rawLittleEndian(arr) });
    return v;
  }

  /** A named initializer (e.g. a model parameter embedded in an exported model). */
  initializer(name: string, data: ArrayLike<number>, shape: readonly number[], dtype: FloatType = this.float): Value {
    if (this.used.has(name)) throw new Error(`duplicate name ${name}`);
    const v = this.value(dtype, shape, name);
    const arr = dtype === "float32" ? (data instanceof Float32Array ? data : Float32Array.from(data)) : Float64Array.from(data);
    this.initializers.push({ name: v.name, dims: shape.slice(), data_type: DTYPE_CODE[dtype], raw_data: rawLittleEndian(arr) });
    return v;
  }

  /** A scalar of the graph's float type (or `dtype`), shared by every use. */
  scalar(x: number, dtype: FloatType = this.float): Value {
    const key = `s:${dtype}:${x}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.constant([x], [], dtype);
      this.cache.set(key, v);
    }
    return v;
  }

  /** A 1-D int64 constant (axes, shapes, indices), shared by every use. */
  ints(values: readonly number[]): Value {
    const key = `i:${values.join(",")}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.value("int64", [values.length], "ints");
      this.initializers.push({ name: v.name, dims: [values.length], data_type: OnnxDataType.INT64, int64_data: values.slice() });
      this.cache.set(key, v);
    }
    return v;
  }

  /** A scalar int64 constant. */
  intScalar(x: number): Value {
    const key = `is:${x}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.value("int64", [], "int");
      this.initializers.push({ name: v.name, dims: [], data_type: OnnxDataType.INT64, int64_data: [x] });
      this.cache.set(key, v);
    }
    return v;
  }

  /** A dimension as a [1] int64 tensor: a number, an input's symbol, or a sum / product of those. */
  dim(d: Dim): Value {
    if (typeof d === "number") return this.ints([d]);
    const key = `d:${d}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    let v: Value;
    const src = this.dimSources.get(d);
    if (src) {
      v = this.emit1("Shape", [src.value], "int64", [1], { start: src.axis, end: src.axis + 1 });
    } else {
      const inner = d.startsWith("(") && d.endsWith(")") ? d.slice(1, -1) : d;
      const op = topLevelSplit(inner, "+").length > 1 ? "+" : "*";
      const parts = topLevelSplit(inner, op);
      if (parts.length < 2) throw new Error(`dimension ${d} is bound by no graph input`);
      v = parts.map((p) => this.dim(/^\d+$/.test(p) ? Number(p) : p)).reduce((a, b) => this.emit1(op === "+" ? "Add" : "Mul", [a, b], "int64", [1]));
    }
    this.cache.set(key, v);
    return v;
  }

  /** A shape as a 1-D int64 tensor. */
  shapeTensor(dims: readonly Dim[]): Value {
    if (dims.every((d) => typeof d === "number")) return this.ints(dims as number[]);
    const key = `shape:${dims.join(",")}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.emit1("Concat", dims.map((d) => this.dim(d)), "int64", [dims.length], { axis: 0 });
      this.cache.set(key, v);
    }
    return v;
  }

  zeros(shape: readonly Dim[], dtype: DType = this.float): Value {
    let tensor: TensorProtoJson;
    if (dtype === "float32") tensor = { dims: [1], data_type: OnnxDataType.FLOAT, raw_data: rawLittleEndian(new Float32Array(1)) };
    else if (dtype === "float64") tensor = { dims: [1], data_type: OnnxDataType.DOUBLE, raw_data: rawLittleEndian(new Float64Array(1)) };
    else if (dtype === "int64") tensor = { dims: [1], data_type: OnnxDataType.INT64, int64_data: [0] };
    else throw new Error(`zeros of ${dtype} not supported`);
    const value = { tensor };
    return this.emit1("ConstantOfShape", [this.shapeTensor(shape)], dtype, shape, { value });
  }

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

  /** Variadic element-wise sum (same shapes). */
  sumAll(xs: readonly Value[]): Value {
    if (xs.length === 1) return xs[0]!;
    return this.emit1("Sum", xs, xs[0]!.dtype, xs[0]!.shape);
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
   * op(a) @ op(b) (+ c) for 2-D a, b; op transposes when asked. `c` (same shape as the result) is added by the
   * Gemm itself: a residual connection without a separate Add kernel.
   */
  gemm(a: Value, b: Value, transA = false, transB = false, c?: Value): Value {
    if (a.rank !== 2 || b.rank !== 2) throw new Error("gemm needs 2-D operands");
    const [m, k1] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [k2, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (k1 !== k2) throw new Error(`gemm inner dimensions ${k1} vs ${k2}`);
    if (c && (c.rank !== 2 || c.shape[0] !== m || c.shape[1] !== n)) throw new Error(`gemm addend [${c.shape}] is not [${m},${n}]`);
    return this.emit1("Gemm", c ? [a, b, c] : [a, b], a.dtype, [m, n], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, (gs, needs) => {
      const g = gs[0]!;
      // With A' = op(a), B' = op(b): dA' = g B'ᵀ and dB' = A'ᵀ g, transposed back where op transposed.
      const ga = !needs[0] ? null : transA ? this.gemm(b, g, transB, true) : this.gemm(g, b, false, !transB);
      const gb = !needs[1] ? null : transB ? this.gemm(g, a, true, transA) : this.gemm(a, g, !transA, false);
      return [ga, gb, needs[2] ? g : null];
    });
  }

  /** Embedding lookup: rows of data [V, ...] at integer indices. */
  gather(data: Value, indices: Value): Value {
    const shape = [...indices.shape, ...data.shape.slice(1)];
    return this.emit1("Gather", [data, indices], data.dtype, shape, { axis: 0 }, (gs, needs) => {
      if (!needs[0]) return [null, null];
      // Rows that repeat add up: ScatterND with reduction "add" into zeros (opset 16+).
      const idx = this.unsqueeze(this.cast(indices, "int64"), [-1]);
      return [this.emit1("ScatterND", [this.zeros(data.shape, data.dtype), idx, gs[0]!], data.dtype, data.shape, { reduction: "add" }), null];
    });
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

  // ---------------------------------------------------------------- composites with hand-written VJPs

  /** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w, x [..., D], w [D]. */
  rmsNorm(x: Value, w: Value, eps: number): Value {
    const D = x.shape[x.rank - 1]!;
    if (typeof D !== "number") throw new Error("rmsNorm needs a fixed last dimension");
    // mean(x²) as Σx² · (1/D): one pass over x instead of a square then a mean (the same value when D is a
    // power of two, within an ulp otherwise).
    const rowShape = [...x.shape.slice(0, -1), 1];
    const sumSq = this.emit1("ReduceSumSquare", [x], x.dtype, rowShape, { axes: [x.rank - 1], keepdims: 1 });
    const ms = this.emit1("Mul", [sumSq, this.scalar(1 / (D as number), x.dtype as FloatType)], x.dtype, rowShape);
    const r = this.emit1("Reciprocal", [this.emit1("Sqrt", [this.emit1("Add", [ms, this.scalar(eps, x.dtype as FloatType)], x.dtype, ms.shape)], x.dtype, ms.shape)], x.dtype, ms.shape); // [..., 1]
    const xn = this.emit1("Mul", [x, r], x.dtype, x.shape);
    const y = this.emit1("Mul", [xn, w], x.dtype, x.shape);
    this.composite("RMSNorm", [x, w], [y], (gs, needs) => {
      const g = gs[0]!;
      const raw = (op: string, a: Value, b: Value, shape: readonly Dim[] = x.shape): Value => this.emit1(op, [a, b], x.dtype, shape);
      let gw: Value | null = null;
      if (needs[1]) {
        const axes = x.shape.slice(0, -1).map((_, i) => i);
        gw = this.emit1("ReduceSum", [raw("Mul", g, xn), this.ints(axes)], x.dtype, [D], { keepdims: 0 });
      }
      let gx: Value | null = null;
      if (needs[0]) {
        // dx = r · (gxn − xn · mean(gxn · xn)), with gxn = g · w.
        const gxn = raw("Mul", g, w);
        const m = this.emit1("ReduceMean", [raw("Mul", gxn, xn)], x.dtype, ms.shape, { axes: [x.rank - 1], keepdims: 1 });
        gx = raw("Mul", raw("Sub", gxn, raw("Mul", xn, m)), r);
      }
      return [gx, gw];
    });
    return y;
  }

  /** SwiGLU: silu(gate) · up, as gate · σ(gate) · up (TensorFlow.js's order of products). */
  swiglu(gate: Value, up: Value): Value {
    const s = this.emit1("Sigmoid", [gate], gate.dtype, gate.shape);
    const a = this.emit1("Mul", [gate, s], gate.dtype, gate.shape);
    const y = this.emit1("Mul", [a, up], gate.dtype, broadcastShapes(a.shape, up.shape));
    this.composite("SwiGLU", [gate, up], [y], (gs, needs) => {
      const g = gs[0]!;
      const raw = (op: string, p: Value, q: Value): Value => this.emit1(op, [p, q], gate.dtype, gate.shape);
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
  rope(x: Value, cos: Value, sinSigned: Value): Value {
    const half = (x.shape[x.rank - 1] as number) / 2;
    const swap = (v: Value): Value => {
      const parts = this.emit("Split", [v, this.ints([half, half])], [{ dtype: v.dtype, shape: [...v.shape.slice(0, -1), half] }, { dtype: v.dtype, shape: [...v.shape.slice(0, -1), half] }], { axis: v.rank - 1 });
      return this.emit1("Concat", [parts[1]!, parts[0]!], v.dtype, v.shape, { axis: v.rank - 1 });
    };
    const shape = broadcastShapes(x.shape, cos.shape);
    const y = this.emit1("Add", [this.emit1("Mul", [x, cos], x.dtype, shape), this.emit1("Mul", [swap(x), sinSigned], x.dtype, shape)], x.dtype, shape);
    this.composite("RoPE", [x], [y], (gs) => {
      const g = gs[0]!;
      return [this.emit1("Add", [this.emit1("Mul", [g, cos], x.dtype, shape), swap(this.emit1("Mul", [g, sinSigned], x.dtype, shape))], x.dtype, shape)];
    });
    return y;
  }

  /**
   * log softmax(logits)[target] per row: logits [N, V], targets [N] (int32/int64) → [N].
   * VJP: g · (onehot(target) − softmax), the one-hot part added by ScatterElements rather than materialised.
   */
  tokenLogProbs(logits: Value, targets: Value): Value {
    const [N, V] = logits.shape as [Dim, Dim];
    const lp = this.emit1("LogSoftmax", [logits], logits.dtype, [N, V], { axis: -1 });
    const t = this.emit1("Unsqueeze", [this.cast(targets, "int64"), this.ints([1])], "int64", [N, 1]);
    const picked = this.emit1("GatherElements", [lp, t], logits.dtype, [N, 1], { axis: 1 });
    const y = this.emit1("Squeeze", [picked, this.ints([1])], logits.dtype, [N]);
    this.composite("TokenLogProbs", [logits], [y], (gs) => {
      const g = this.emit1("Unsqueeze", [gs[0]!, this.ints([1])], logits.dtype, [N, 1]);
      const soft = this.emit1("Exp", [lp], logits.dtype, [N, V]);
      const negSoft = this.emit1("Mul", [soft, this.emit1("Neg", [g], logits.dtype, [N, 1])], logits.dtype, [N, V]);
      return [this.emit1("ScatterElements", [negSoft, t, g], logits.dtype, [N, V], { axis: 1, reduction: "add" })];
    });
    return y;
  }

  // ---------------------------------------------------------------- autodiff

  /**
   * prev + g for two partial gradients. When g is a Gemm a VJP just emitted, with no addend and no other user
   * (no node reads it and it is no other value's gradient), prev becomes its C input: the Gemm adds it as it
   * writes, one element-wise pass fewer. prev was computed before g's node, so the node order stays topological.
   */
  private accumulate(prev: Value, g: Value, grads: ReadonlyMap<number, Value>): Value {
    const node = this.producers.get(g.id);
    const shared = (): boolean => this.isRead(g) || [...grads.values()].some((v) => v.id === g.id);
    if (node && node.op_type === "Gemm" && node.input.length === 2 && prev.dtype === g.dtype && prev.shape.length === 2 && prev.shape.every((d, i) => d === g.shape[i]) && !shared()) {
      node.input.push(prev.name);
      return g;
    }
    return this.emit1("Add", [prev, g], g.dtype, g.shape);
  }

  private isRead(v: Value): boolean {
    return this.nodes.some((n) => n.input.includes(v.name)) || this.aliases.has(v.name) || this.graphOutputs.some((o) => o.name === v.name);
  }

  /**
   * Gradients of scalar `y` with respect to each of `wrt`, seeded with `seed` (default 1): the graph of
   * d(seed · y)/d wrt. A value that `y` does not depend on gets zeros. First-order only, once per graph.
   */
  gradients(y: Value, wrt: readonly Value[], seed?: Value): Value[] {
    // Once per graph: the accumulation peephole rewires Gemm nodes behind the tape's back.
    if (this.differentiated) throw new Error("gradients() was already called on this graph");
    this.differentiated = true;
    const end = this.tape.length;
    const dep = new Set(wrt.map((v) => v.id));
    for (let i = 0; i < end; i++) {
      const e = this.tape[i]!;
      if (e.inputs.some((v) => dep.has(v.id))) for (const o of e.outputs) if (isFloat(o.dtype)) dep.add(o.id);
    }
    const grads = new Map<number, Value>();
    if (dep.has(y.id)) {
      const one = (): Value => this.scalar(1, y.dtype as FloatType);
      grads.set(y.id, seed ?? (y.rank === 0 ? one() : this.expand(one(), y.shape)));
    }
    for (let i = end - 1; i >= 0; i--) {
      const e = this.tape[i]!;
      const gOut = e.outputs.map((o) => grads.get(o.id) ?? null);
      if (gOut.every((g) => g === null)) continue;
      const needs = e.inputs.map((v) => dep.has(v.id));
      if (!needs.some(Boolean)) continue;
      if (!e.vjp) throw new Error(`no gradient rule for ${e.op} (${e.outputs.map((o) => o.name).join(", ")})`);
      const gIn = e.vjp(gOut, needs);
      e.inputs.forEach((v, k) => {
        const g = gIn[k];
        if (!needs[k] || !g) return;
        const prev = grads.get(v.id);
        grads.set(v.id, prev ? this.accumulate(prev, g, grads) : g);
      });
      // Free what no earlier entry reads: the gradient of an intermediate is complete once its producer ran.
      for (const o of e.outputs) if (!wrt.some((w) => w.id === o.id)) grads.delete(o.id);
    }
    return wrt.map((w) => grads.get(w.id) ?? this.zeros(w.shape, w.dtype));
  }
}

/** A symbolic dimension as an ONNX dim_param: "B*T" → "BxT", "P+T" → "P_plus_T" (distinct names stay distinct). */
function dimParam(d: string): string {
  return d.replace(/\*/g, "x").replace(/\+/g, "_plus_").replace(/[()]/g, "");
}

function topLevelSplit(s: string, op: "+" | "*"): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === op && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function encodeAttr(name: string, a: AttrValue): AttributeProtoJson {
  if (typeof a === "number") {
    if (!Number.isInteger(a)) throw new Error(`attribute ${name}: ${a} is not an integer; write { float: ${a} }`);
    return { name, type: AttributeType.INT, i: a };
  }
  if (typeof a === "string") return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a) };
  if (Array.isArray(a)) {
    if (!a.every(Number.isInteger)) throw new Error(`attribute ${name}: ints must be integers; write { floats: [...] }`);
    return { name, type: AttributeType.INTS, ints: a };
  }
  if ("float" in a) return { name, type: AttributeType.FLOAT, f: a.float };
  if ("floats" in a) return { name, type: AttributeType.FLOATS, floats: a.floats };
  return { name, type: AttributeType.TENSOR, t: a.tensor };
}
