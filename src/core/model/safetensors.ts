import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** raw little-endian bytes exactly as stored */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Position in the Rust crate's `Dtype` enum, which orders tensors on write (descending): keeps offsets aligned and output identical to HF's. */
const DTYPE_RANK: Record<SafetensorsDtype, number> = { BOOL: 0, U8: 1, I8: 2, I16: 3, F16: 4, BF16: 5, I32: 6, F32: 7, F64: 8, I64: 9 };
/** Same limit as the reference implementation; guards against allocating for a corrupt length. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

const isDtype = (d: unknown): d is SafetensorsDtype => typeof d === "string" && Object.hasOwn(DTYPE_SIZE, d);
const isIndex = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Element count, or null if the shape is malformed. */
function numel(shape: unknown): number | null {
  if (!Array.isArray(shape) || !shape.every(isIndex)) return null;
  return shape.reduce((a: number, b: number) => a * b, 1);
}

/** Parses a whole file. Tensor bytes are views into `buf` (no copy). Gaps between tensors are tolerated; overlaps are not. */
export function parseSafetensors(buf: Uint8Array, source = "safetensors data"): SafetensorsFile {
  function fail(msg: string): never { throw new Error(`${source}: ${msg}`); }
  if (buf.length < 8) fail(`file is ${buf.length} bytes, shorter than the 8-byte header length`);
  const n = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerEnd = 8 + Number(n);
  if (headerEnd > buf.length) fail(`header length ${n} runs past the end of the ${buf.length}-byte file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf.subarray(8, headerEnd)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return fail("header is not a JSON object");
  const data = buf.subarray(headerEnd);
  const metadata: Record<string, string> = {};
  const entries: { name: string; begin: number; end: number; tensor: StoredTensor }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof info !== "object" || info === null || Array.isArray(info)) fail(`${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`${METADATA_KEY}.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (typeof info !== "object" || info === null) return fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDtype(dtype)) return fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    const count = numel(shape);
    if (count === null) return fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      return fail(`${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > data.length) fail(`${where}: data_offsets [${begin}, ${end}] out of range for a ${data.length}-byte data buffer`);
    if (end - begin !== count * DTYPE_SIZE[dtype]) {
      fail(`${where}: ${end - begin} bytes stored but shape [${(shape as number[]).join(", ")}] of ${dtype} needs ${count * DTYPE_SIZE[dtype]}`);
    }
    entries.push({ name, begin, end, tensor: { dtype, shape: [...(shape as number[])], bytes: data.subarray(begin, end) } });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1]!, cur = entries[i]!;
    if (cur.begin < prev.end) fail(`tensor ${JSON.stringify(cur.name)} overlaps tensor ${JSON.stringify(prev.name)} in the data buffer`);
  }
  return { tensors: new Map(entries.map((e) => [e.name, e.tensor])), metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(readFileSync(path), path);
}

/** The 8-byte length plus padded header, and the tensors in file order. */
function prepare(tensors: Map<string, StoredTensor>, metadata: Record<string, string>): { head: Uint8Array; body: Uint8Array[] } {
  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)); // Rust compares UTF-8 bytes
  const named = [...tensors].sort(([an, a], [bn, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || byteOrder(an, bn));
  // Built by hand because JS objects would move integer-like keys ("0", "12") to the front.
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort(byteOrder);
  if (metaKeys.length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${metaKeys.map((k) => {
      if (typeof metadata[k] !== "string") throw new Error(`serializeSafetensors: metadata ${JSON.stringify(k)} is not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`;
    }).join(",")}}`);
  }
  let offset = 0;
  for (const [name, t] of named) {
    const where = `serializeSafetensors: tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) throw new Error(`${where}: name is reserved`);
    if (!isDtype(t.dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
    const count = numel(t.shape);
    if (count === null) throw new Error(`${where}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    if (t.bytes.length !== count * DTYPE_SIZE[t.dtype]) {
      throw new Error(`${where}: has ${t.bytes.length} bytes but shape [${t.shape.join(", ")}] of ${t.dtype} needs ${count * DTYPE_SIZE[t.dtype]}`);
    }
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${offset + t.bytes.length}]}`);
    offset += t.bytes.length;
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil(json.length / 8) * 8; // HF pads with spaces so the data buffer starts 8-byte aligned
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, body: named.map(([, t]) => t.bytes) };
}

export function serializeSafetensors(tensors: Map<string, StoredTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const { head, body } = prepare(tensors, metadata);
  const out = new Uint8Array(head.length + body.reduce((s, b) => s + b.length, 0));
  out.set(head);
  let at = head.length;
  for (const b of body) { out.set(b, at); at += b.length; }
  return out;
}

/** Atomic: writes `path.tmp`, fsyncs, then renames, so readers never see a half-written model. Streams tensors rather than building one big buffer. */
export function writeSafetensors(path: string, tensors: Map<string, StoredTensor>, metadata: Record<string, string> = {}): void {
  const { head, body } = prepare(tensors, metadata);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    for (const chunk of [head, ...body]) {
      for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done, chunk.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  renameSync(tmp, path);
  try { // make the rename itself durable; directories cannot be opened on Windows, where this is skipped
    const dirFd = openSync(dirname(path), "r");
    try { fsyncSync(dirFd); } finally { closeSync(dirFd); }
  } catch { /* best effort */ }
}

let f16Table: Float32Array | undefined;
/** All 65536 half values, decoded exactly once (every F16 is representable in F32). */
function f16Values(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const mag = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant ? NaN : Infinity) : (1024 + mant) * 2 ** (exp - 25);
    f16Table[h] = h & 0x8000 ? -mag : mag;
  }
  return f16Table;
}

export function toFloat32(t: StoredTensor): Float32Array {
  const size = DTYPE_SIZE[t.dtype] as number | undefined;
  if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
    throw new Error(`toFloat32: dtype ${t.dtype} is ${size ? "an integer/boolean type" : "unknown"}; only F32, F16, BF16 and F64 convert to floats`);
  }
  const count = numel(t.shape);
  if (count === null || count * size! !== t.bytes.length) throw new Error(`toFloat32: ${t.bytes.length} bytes do not match shape [${t.shape.join(", ")}] of ${t.dtype}`);
  // DataView reads little-endian regardless of host and tolerates views at unaligned offsets.
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float32Array(count);
  if (t.dtype === "F32") for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  else if (t.dtype === "F64") for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true); // typed-array store rounds to nearest even
  else if (t.dtype === "F16") { const lut = f16Values(); for (let i = 0; i < count; i++) out[i] = lut[view.getUint16(i * 2, true)]!; }
  else { const bits = new Uint32Array(out.buffer); for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16; } // BF16 is the top half of an F32
  return out;
}

/** F32 bit pattern -> F16 bits, round to nearest, ties to even. */
function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff, mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  // Normals drop 13 mantissa bits; subnormals (units of 2^-24) drop 14 - e bits from the full significand.
  const sig = e >= 1 ? mant : mant | 0x800000;
  const shift = e >= 1 ? 13 : 14 - e;
  if (shift > 24) return sign; // below 2^-25: rounds to zero
  let h = (e >= 1 ? e << 10 : 0) | (sig >>> shift);
  const rem = sig & ((1 << shift) - 1), half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1))) h++; // a carry rolls correctly into the exponent (or to Inf)
  return sign | h;
}

export function fromFloat32(data: Float32Array, shape: number[], dtype: "F32" | "F16" | "BF16" = "F32"): StoredTensor {
  const count = numel(shape);
  if (count !== data.length) throw new Error(`fromFloat32: ${data.length} values do not fit shape ${JSON.stringify(shape)}`);
  const bytes = new Uint8Array(count * DTYPE_SIZE[dtype]);
  const view = new DataView(bytes.buffer);
  if (dtype === "F32") {
    for (let i = 0; i < count; i++) view.setFloat32(i * 4, data[i]!, true);
  } else {
    const bits = new Uint32Array(data.buffer, data.byteOffset, count);
    for (let i = 0; i < count; i++) {
      const b = bits[i]!;
      const h = dtype === "F16" ? f32BitsToF16(b)
        : (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 // NaN: keep it NaN even if the payload sat in the low half
        : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      view.setUint16(i * 2, h, true);
    }
  }
  return { dtype, shape: [...shape], bytes };
}
