/**
 * The ONNX bytes and test data of scripts/gpu/webgpu-check.mjs: a minimal protobuf writer for small graphs and seeded
 * inputs. Plain JavaScript with no dependencies, so the check runs on a machine that has only Node and
 * onnxruntime-node.
 */
// ------------------------------------------------------------------------------------------------ ONNX bytes

/** Minimal protobuf writer: enough of onnx.proto for small graphs. */
export class Pb {
  constructor() {
    this.parts = [];
  }
  varint(v) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x) b |= 0x80;
      out.push(b);
    } while (x);
    this.parts.push(Uint8Array.from(out));
    return this;
  }
  key(field, wire) {
    return this.varint((field << 3) | wire);
  }
  int(field, v) {
    return this.key(field, 0).varint(v);
  }
  bytes(field, data) {
    this.key(field, 2).varint(data.length);
    this.parts.push(data);
    return this;
  }
  str(field, s) {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field, pb) {
    return this.bytes(field, pb.finish());
  }
  float(field, f) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, f, true);
    this.key(field, 5);
    this.parts.push(b);
    return this;
  }
  finish() {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export const ONNX_TYPE = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 };

export function typedArrayFor(dtype, n) {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "int32":
      return new Int32Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "bool":
    case "uint8":
      return new Uint8Array(n);
    default:
      throw new Error(`no typed array for ${dtype}`);
  }
}

export function valueInfo(name, dtype, shape) {
  const shp = new Pb();
  for (const d of shape) shp.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, ONNX_TYPE[dtype]).msg(2, shp);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

export function tensorProto(name, dtype, dims, data) {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, ONNX_TYPE[dtype]).str(8, name);
  t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return t;
}

export function attribute(name, v) {
  const a = new Pb().str(1, name);
  if (typeof v === "string") return a.bytes(4, new TextEncoder().encode(v)).int(20, 3);
  if (Array.isArray(v)) {
    for (const x of v) a.int(8, x);
    return a.int(20, 7);
  }
  if (typeof v === "object" && v.float !== undefined) return a.float(2, v.float).int(20, 1);
  if (typeof v === "object" && v.tensor) return a.msg(5, tensorProto("", v.tensor.dtype, v.tensor.dims, v.tensor.data)).int(20, 4);
  return a.int(3, v).int(20, 2);
}

/**
 * spec: { nodes: [{ op, inputs, outputs, name?, attrs? }], inputs: [{ name, dtype, shape }],
 *         outputs: [{ name, dtype, shape }], initializers: [{ name, dtype, dims, data }] }
 */
export function buildModel(spec, opset) {
  const g = new Pb();
  spec.nodes.forEach((n, i) => {
    const node = new Pb();
    for (const x of n.inputs) node.str(1, x);
    for (const y of n.outputs) node.str(2, y);
    node.str(3, n.name ?? `${n.op}_${i}`).str(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.msg(5, attribute(k, v));
    g.msg(1, node);
  });
  g.str(2, "webgpu_check");
  for (const t of spec.initializers ?? []) g.msg(5, tensorProto(t.name, t.dtype, t.dims, t.data));
  for (const v of spec.inputs) g.msg(11, valueInfo(v.name, v.dtype, v.symbolic ?? v.shape));
  for (const v of spec.outputs) g.msg(12, valueInfo(v.name, v.dtype, v.shape ?? []));
  return new Pb()
    .int(1, 8) // ir_version
    .str(2, "webgpu-check")
    .msg(7, g)
    .msg(8, new Pb().str(1, "").int(2, opset))
    .finish();
}

// ------------------------------------------------------------------------------------------------ data

export let seed = 12345;
export function rand() {
  // xorshift32: reproducible inputs.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}

/** gen: "sym" uniform [-1, 1), "pos" [0.1, 2.1), "int:K" integers in [0, K), "bool". */
export function makeData(dtype, shape, gen = "sym") {
  const n = shape.reduce((a, b) => a * b, 1);
  const arr = typedArrayFor(dtype, n);
  for (let i = 0; i < n; i++) {
    if (gen === "bool") arr[i] = rand() < 0.5 ? 1 : 0;
    else if (gen.startsWith("int:")) {
      const k = Math.floor(rand() * Number(gen.slice(4)));
      arr[i] = dtype === "int64" ? BigInt(k) : k;
    } else if (gen === "pos") arr[i] = 0.1 + 2 * rand();
    else arr[i] = 2 * rand() - 1;
  }
  return arr;
}

export const i64 = (...v) => BigInt64Array.from(v.map(BigInt));
