/**
 * An ONNX graph under construction (opset 17, standard ops only) and the tape of its differentiable steps:
 * graph inputs and outputs, nodes, initializers and constants, serialization, and the reverse pass.
 * GraphBuilder adds the ops, each with its VJP.
 *
 * Why our own autodiff: the stock onnxruntime-node build has no training ops (SoftmaxGrad, GeluGrad … are
 * rejected), so every backward formula must be spelled in basic ops. Each differentiable op records a VJP rule
 * on the tape as it emits its nodes; `gradients()` walks the tape backwards.
 *
 * Shapes are tracked symbolically (symbolicShape.ts), so one graph serves every batch size and length.
 */
import {
  AttributeType,
  OnnxDataType,
  encodeModel,
  rawLittleEndian,
  type AttributeProtoJson,
  type ModelProtoJson,
  type NodeProtoJson,
  type OnnxDataTypeCode,
  type TensorProtoJson,
  type ValueInfoProtoJson,
} from "./onnxProto";
import { dimParam, topLevelSplit, type Dim } from "./symbolicShape";


export type FloatType = "float32" | "float64";
export type DType = FloatType | "int32" | "int64" | "bool";

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

export type Vjp = (grads: ReadonlyArray<Value | null>, needs: readonly boolean[]) => Array<Value | null>;

interface TapeEntry {
  op: string;
  inputs: Value[];
  outputs: Value[];
  /** null: not differentiable (a gradient reaching it from a value that needs one is an error). */
  vjp: Vjp | null;
}

export const DTYPE_CODE: Record<DType, OnnxDataTypeCode> = {
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

/** The graph and its tape; GraphBuilder (the ops) and llamaOps (the fused ops) emit nodes through it. */
export class GraphRecorder {
  private readonly nodes: NodeProtoJson[] = [];
  private readonly initializers: TensorProtoJson[] = [];
  private readonly graphInputs: ValueInfoProtoJson[] = [];
  private readonly graphOutputs: ValueInfoProtoJson[] = [];
  private readonly tape: TapeEntry[] = [];
  private readonly used = new Set<string>();
  protected counter = 0;
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
    return encodeModel(this.toModel(producer));
  }

  /** The model as protobuf's JSON form (initializers with their raw bytes), before encoding. */
  toModel(producer = "self-training-studio"): ModelProtoJson {
    const rename = (names: string[]): string[] => names.map((n) => this.aliases.get(n) ?? n);
    const node = this.aliases.size === 0 ? this.nodes : this.nodes.map((n) => ({ ...n, input: rename(n.input), output: rename(n.output) }));
    return {
      ir_version: 8,
      producer_name: producer,
      opset_import: [{ domain: "", version: OPSET }],
      graph: { name: this.graphName, node, initializer: this.initializers, input: this.graphInputs, output: this.graphOutputs },
    };
  }

  /** The graph's output names, in order. */
  outputNames(): string[] {
    return this.graphOutputs.map((o) => o.name);
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

  /** emit() with one output. */
  emit1(opType: string, inputs: ReadonlyArray<Value | null>, dtype: DType, shape: readonly Dim[], attrs: Record<string, AttrValue> = {}, vjp: Vjp | null = null): Value {
    return this.emit(opType, inputs, [{ dtype, shape }], attrs, undefined, vjp)[0]!;
  }

  /** Records a differentiable composite: `outputs` were computed from `inputs` by nodes emitted meanwhile. */
  composite(op: string, inputs: Value[], outputs: Value[], vjp: Vjp): void {
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

  /**
   * A scalar int32 constant, for arithmetic on token ids and indices: the WebGPU provider has int32 kernels but
   * no int64 arithmetic, comparisons or Unsqueeze (such nodes run on the CPU and their results are copied across).
   */
  int32Scalar(x: number): Value {
    const key = `i32:${x}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.value("int32", [], "int");
      const raw = new Uint8Array(4);
      new DataView(raw.buffer).setInt32(0, x, true);
      this.initializers.push({ name: v.name, dims: [], data_type: OnnxDataType.INT32, raw_data: raw });
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
      // The seed's Expand needs no VJP: it is emitted after the tape's end and never differentiated.
      grads.set(y.id, seed ?? (y.rank === 0 ? one() : this.emit1("Expand", [one(), this.shapeTensor(y.shape)], y.dtype, y.shape)));
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
