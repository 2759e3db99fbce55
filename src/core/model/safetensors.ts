import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
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

/** Where one tensor's bytes lie: `begin`/`end` are offsets into the data buffer (after the header). */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A file's header without its data: names, dtypes, shapes and offsets, and the metadata. */
export interface SafetensorsHeader {
  /** byte position of the data buffer in the file (8 + header length) */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/**
 * Checks a header against the data buffer's length: every entry well-formed, its bytes matching its shape and
 * dtype, inside the buffer and overlapping no other. Gaps between tensors are tolerated; overlaps are not.
 * `head` holds at least the 8-byte length field and, when that length fits the file, the header after it.
 */
function parseHeader(head: Uint8Array, fileLength: number, fail: (msg: string) => never): SafetensorsHeader {
  if (fileLength < 8) fail(`file is ${fileLength} bytes, shorter than the 8-byte header length`);
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(n);
  if (dataStart > fileLength) fail(`header length ${n} runs past the end of the ${fileLength}-byte file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(head.subarray(8, dataStart)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return fail("header is not a JSON object");
  const dataLength = fileLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, TensorInfo][] = [];
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
    if (begin > end || end > dataLength) fail(`${where}: data_offsets [${begin}, ${end}] out of range for a ${dataLength}-byte data buffer`);
    if (end - begin !== count * DTYPE_SIZE[dtype]) {
      fail(`${where}: ${end - begin} bytes stored but shape [${(shape as number[]).join(", ")}] of ${dtype} needs ${count * DTYPE_SIZE[dtype]}`);
    }
    entries.push([name, { dtype, shape: [...(shape as number[])], begin, end }]);
  }
  const byOffset = [...entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const [prevName, prev] = byOffset[i - 1]!, [curName, cur] = byOffset[i]!;
    if (cur.begin < prev.end) fail(`tensor ${JSON.stringify(curName)} overlaps tensor ${JSON.stringify(prevName)} in the data buffer`);
  }
  return { dataStart, tensors: new Map(byOffset), metadata };
}

/** Parses a whole file held in memory. Tensor bytes are views into `buf` (no copy); tensors come in file order. */
export function parseSafetensors(buf: Uint8Array, source = "safetensors data"): SafetensorsFile {
  const header = parseHeader(buf, buf.length, (msg) => { throw new Error(`${source}: ${msg}`); });
  const data = buf.subarray(header.dataStart);
  const tensors = new Map<string, StoredTensor>();
  for (const [name, t] of header.tensors) tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.begin, t.end) });
  return { tensors, metadata: header.metadata };
}

/** Reads exactly `into.length` bytes at `position`, in pieces (one read is limited to 2 GiB). */
function readFully(fd: number, into: Uint8Array, position: number, path: string): void {
  const piece = 1 << 30;
  for (let done = 0; done < into.length;) {
    const n = readSync(fd, into, done, Math.min(piece, into.length - done), position + done);
    if (n === 0) throw new Error(`${path}: file ended after ${position + done} bytes (truncated while being read?)`);
    done += n;
  }
}

/** Options of SafetensorsReader.readFloat32. */
export interface ReadFloat32Options {
  /**
   * Refuse a NaN or an infinity, naming the tensor and the index of the first (nonFiniteMessage): what loading
   * model weights asks for, since such a weight turns every logit it reaches into NaN without any error.
   */
  finite?: boolean;
}

/** A tensor's first value that is NaN or infinite: its index and the value. */
export interface NonFinite {
  index: number;
  value: number;
}

/** An open safetensors file whose header has been read and checked; tensors are read one at a time. */
export interface SafetensorsReader extends SafetensorsHeader {
  path: string;
  /** The tensor as float32 values (F32, BF16, F16 or F64 on disk); reads only its bytes. */
  readFloat32(name: string, options?: ReadFloat32Options): Float32Array;
  /**
   * The first NaN or infinity of a floating-point tensor as stored, or null: reads its bytes in pieces of a few
   * megabytes and converts nothing, so checking a whole model costs one read of its files and little memory.
   */
  firstNonFinite(name: string): NonFinite | null;
  close(): void;
}

/** "model.safetensors: model.layers.3.mlp.up_proj.weight holds NaN at index 1234": what loading and inspecting say. */
export function nonFiniteMessage(path: string, name: string, at: NonFinite): string {
  return `${path}: ${name} holds ${String(at.value)} at index ${at.index}`;
}

/**
 * Opens a safetensors file and reads its header only, checked as `parseSafetensors` checks it: cheap even for
 * a multi-gigabyte shard, for inspecting a model or checking it against a config before reading any weights.
 */
export function openSafetensors(path: string): SafetensorsReader {
  const fd = openSync(path, "r");
  try {
    const fail = (msg: string): never => { throw new Error(`${path}: ${msg}`); };
    const size = fstatSync(fd).size;
    const lengthField = new Uint8Array(8);
    if (size >= 8) readFully(fd, lengthField, 0, path);
    const n = new DataView(lengthField.buffer).getBigUint64(0, true);
    const head = new Uint8Array(n <= BigInt(Math.min(MAX_HEADER_BYTES, size - 8)) ? 8 + Number(n) : 8);
    head.set(lengthField);
    if (head.length > 8) readFully(fd, head.subarray(8), 8, path);
    const header = parseHeader(head, size, fail);
    let open = true;
    return {
      ...header,
      path,
      readFloat32(name: string, options: ReadFloat32Options = {}): Float32Array {
        const t = header.tensors.get(name);
        if (!t) throw new Error(`${path}: no tensor ${name}`);
        if (!open) throw new Error(`${path}: read of ${name} after close`);
        return readTensorFloat32(fd, header.dataStart, t, path, name, options.finite ?? false);
      },
      firstNonFinite(name: string): NonFinite | null {
        const t = header.tensors.get(name);
        if (!t) throw new Error(`${path}: no tensor ${name}`);
        if (!open) throw new Error(`${path}: read of ${name} after close`);
        return scanNonFinite(fd, header.dataStart, t, path, name);
      },
      close(): void {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Just the header of a file (names, dtypes, shapes, offsets, metadata): what an inspector shows. */
export function readSafetensorsHeader(path: string): SafetensorsHeader & { path: string } {
  const r = openSafetensors(path);
  r.close();
  return { path, dataStart: r.dataStart, tensors: r.tensors, metadata: r.metadata };
}

/**
 * One tensor as float32, allocating nothing beyond the result: 2-byte types are read into the upper half of
 * the result's own buffer and widened in place, so loading a model peaks at its float32 size.
 */
function readTensorFloat32(fd: number, dataStart: number, t: TensorInfo, path: string, name: string, finite: boolean): Float32Array {
  const count = numel(t.shape)!;
  if (!isFloat(t.dtype)) throw new Error(`${path}: tensor ${name} is ${t.dtype}, not a floating-point type (F32, BF16, F16, F64)`);
  const out = new Float32Array(count);
  const stored = t.end - t.begin;
  const raw = t.dtype === "F64" ? new Uint8Array(stored) : new Uint8Array(out.buffer, out.byteLength - stored, stored);
  readFully(fd, raw, dataStart + t.begin, path);
  const bad = decodeInto(t.dtype, raw, out, finite);
  if (bad >= 0) throw new Error(nonFiniteMessage(path, name, { index: bad, value: out[bad]! }));
  return out;
}

/** Bytes read at a time when scanning a tensor's values (a multiple of every element size). */
const SCAN_PIECE = 16 << 20;

function scanNonFinite(fd: number, dataStart: number, t: TensorInfo, path: string, name: string): NonFinite | null {
  if (!isFloat(t.dtype)) throw new Error(`${path}: tensor ${name} is ${t.dtype}, not a floating-point type (F32, BF16, F16, F64)`);
  const dtype = t.dtype;
  const size = DTYPE_SIZE[dtype];
  const total = t.end - t.begin;
  const piece = new Uint8Array(Math.min(SCAN_PIECE, total));
  const view = new DataView(piece.buffer);
  for (let done = 0; done < total; done += piece.length) {
    const bytes = piece.subarray(0, Math.min(piece.length, total - done));
    readFully(fd, bytes, dataStart + t.begin + done, path);
    const at = firstNonFiniteStored(dtype, view, bytes.length / size);
    if (at >= 0) {
      const one = new Float32Array(1);
      decodeInto(dtype, bytes.subarray(at * size, (at + 1) * size), one);
      return { index: done / size + at, value: one[0]! };
    }
  }
  return null;
}

/**
 * The index of the first of `count` stored values that is NaN or infinite once float32 (an all-ones exponent in
 * the type's own layout; an F64 also when it overflows float32, as loading would make it), or -1. One loop per
 * type, so that the test inside is a mask and a compare.
 */
function firstNonFiniteStored(dtype: "F32" | "F16" | "BF16" | "F64", view: DataView, count: number): number {
  // Typed-array views where the host is little-endian, as the file is (the piece is fresh, so aligned): several
  // times faster than DataView reads, about 0.3 s for 135M bf16 values.
  if (littleEndianHost && (dtype === "BF16" || dtype === "F16")) {
    const halves = new Uint16Array(view.buffer, view.byteOffset, count);
    const mask = dtype === "BF16" ? 0x7f80 : 0x7c00;
    for (let i = 0; i < count; i++) if ((halves[i]! & mask) === mask) return i;
    return -1;
  }
  if (littleEndianHost && dtype === "F32") {
    const words = new Uint32Array(view.buffer, view.byteOffset, count);
    for (let i = 0; i < count; i++) if ((words[i]! & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  if (dtype === "F32") {
    for (let i = 0; i < count; i++) if ((view.getUint32(i * 4, true) & 0x7f800000) === 0x7f800000) return i;
  } else if (dtype === "BF16") {
    for (let i = 0; i < count; i++) if ((view.getUint16(i * 2, true) & 0x7f80) === 0x7f80) return i;
  } else if (dtype === "F16") {
    for (let i = 0; i < count; i++) if ((view.getUint16(i * 2, true) & 0x7c00) === 0x7c00) return i;
  } else {
    for (let i = 0; i < count; i++) if (!Number.isFinite(Math.fround(view.getFloat64(i * 8, true)))) return i;
  }
  return -1;
}

export function readSafetensors(path: string): SafetensorsFile {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(fstatSync(fd).size); // readFileSync refuses files over 2 GiB
    readFully(fd, buf, 0, path);
    return parseSafetensors(buf, path);
  } finally {
    closeSync(fd);
  }
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

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const isFloat = (d: SafetensorsDtype): d is "F32" | "F16" | "BF16" | "F64" => d === "F32" || d === "F16" || d === "BF16" || d === "F64";

let f16Table: Uint32Array | undefined;
/** The F32 bit pattern of every half value (all are exact in F32; NaN payloads and signs kept). */
function f16ToF32Bits(): Uint32Array {
  if (f16Table) return f16Table;
  f16Table = new Uint32Array(65536);
  const one = new Float32Array(1), oneBits = new Uint32Array(one.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp === 31) f16Table[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    else if (exp > 0) f16Table[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    else { one[0] = mant * 2 ** -24; f16Table[h] = (sign | oneBits[0]!) >>> 0; } // zero or subnormal: an F32 normal
  }
  return f16Table;
}

/**
 * Decodes little-endian `dtype` values from `src` into `out` (same count), bit-exactly for F32, F16 and BF16
 * (NaN payloads included). `src` may be the top half of `out`'s own bytes: element i is read before slot i is
 * written and slot i never reaches an unread element, so 2-byte types widen in place.
 */
function decodeInto(dtype: "F32" | "F16" | "BF16" | "F64", src: Uint8Array, out: Float32Array, check = false): number {
  const count = out.length;
  const outBits = new Uint32Array(out.buffer, out.byteOffset, count);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength); // little-endian reads on any host, any alignment
  if (dtype === "F32") {
    const inPlace = src.buffer === out.buffer && src.byteOffset === out.byteOffset; // read straight into `out`: nothing to do
    if (!littleEndianHost) for (let i = 0; i < count; i++) outBits[i] = view.getUint32(i * 4, true);
    else if (!inPlace) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(src);
  } else if (dtype === "F64") {
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true); // typed-array store rounds to nearest even
  } else {
    const halves = littleEndianHost && src.byteOffset % 2 === 0 ? new Uint16Array(src.buffer, src.byteOffset, count) : null;
    const lut = dtype === "F16" ? f16ToF32Bits() : null;
    // The check rides along: an all-ones exponent of the stored half is a NaN or an infinity. Unchecked, a mask
    // no 16-bit value matches keeps the loop the same.
    const mask = !check ? 0x10000 : dtype === "F16" ? 0x7c00 : 0x7f80;
    let first = -1;
    for (let i = 0; i < count; i++) {
      const h = halves ? halves[i]! : view.getUint16(i * 2, true);
      outBits[i] = lut ? lut[h]! : h << 16; // BF16 is the top half of an F32
      if ((h & mask) === mask && first < 0) first = i;
    }
    return first;
  }
  // F32 has no conversion loop to ride along (it is read in place), and F64 may overflow float32: one pass after.
  if (check) for (let i = 0; i < count; i++) if ((outBits[i]! & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

export function toFloat32(t: StoredTensor): Float32Array {
  const size = DTYPE_SIZE[t.dtype] as number | undefined;
  if (!isFloat(t.dtype)) {
    throw new Error(`toFloat32: dtype ${t.dtype} is ${size ? "an integer/boolean type" : "unknown"}; only F32, F16, BF16 and F64 convert to floats`);
  }
  const count = numel(t.shape);
  if (count === null || count * size! !== t.bytes.length) throw new Error(`toFloat32: ${t.bytes.length} bytes do not match shape [${t.shape.join(", ")}] of ${t.dtype}`);
  const out = new Float32Array(count);
  decodeInto(t.dtype, t.bytes, out);
  return out;
}

/** F32 bit pattern -> F16 bits, round to nearest, ties to even; NaNs stay NaN with their sign and top payload bits. */
function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff, mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? (mant >>> 13) || 0x200 : 0);
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

/** F32 bit pattern -> BF16 bits, round to nearest, ties to even (a carry out of the top finite value gives Inf). */
function f32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | ((b & 0x7f0000) ? 0 : 0x40); // NaN stays NaN if its payload sat in the low half
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; // b + 0x8000 < 2^32 for every non-NaN b, so no wrap
}

export function fromFloat32(data: Float32Array, shape: number[], dtype: "F32" | "F16" | "BF16" = "F32"): StoredTensor {
  const count = numel(shape);
  if (count !== data.length) throw new Error(`fromFloat32: ${data.length} values do not fit shape ${JSON.stringify(shape)}`);
  const bytes = new Uint8Array(count * DTYPE_SIZE[dtype]);
  const bits = new Uint32Array(data.buffer, data.byteOffset, count);
  if (dtype === "F32") {
    if (littleEndianHost) bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else { const view = new DataView(bytes.buffer); for (let i = 0; i < count; i++) view.setUint32(i * 4, bits[i]!, true); }
  } else {
    const convert = dtype === "F16" ? f32BitsToF16 : f32BitsToBf16;
    if (littleEndianHost) {
      const halves = new Uint16Array(bytes.buffer);
      for (let i = 0; i < count; i++) halves[i] = convert(bits[i]!);
    } else {
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < count; i++) view.setUint16(i * 2, convert(bits[i]!), true);
    }
  }
  return { dtype, shape: [...shape], bytes };
}
