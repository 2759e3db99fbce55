import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  fromFloat32, openSafetensors, parseSafetensors, readSafetensors, readSafetensorsHeader, serializeSafetensors, toFloat32, writeSafetensors,
} from "../../../src/core/model/safetensors";
import { Rng } from "../../../src/core/util/rng";
import type { StoredTensor } from "../../../src/core/model/safetensors";
import { tempDir } from "../../helpers/paths";

const u16 = (...values: number[]): Uint8Array => new Uint8Array(new Uint16Array(values).buffer); // test hosts are little-endian
const f16 = (bits: number): number => toFloat32({ dtype: "F16", shape: [], bytes: u16(bits) })[0]!;
const bf16 = (bits: number): number => toFloat32({ dtype: "BF16", shape: [], bytes: u16(bits) })[0]!;
const toF16Bits = (x: number): number => new Uint16Array(fromFloat32(new Float32Array([x]), [], "F16").bytes.buffer)[0]!;
const toBf16Bits = (x: number): number => new Uint16Array(fromFloat32(new Float32Array([x]), [], "BF16").bytes.buffer)[0]!;

function sample(): Map<string, StoredTensor> {
  return new Map<string, StoredTensor>([
    ["model.w", fromFloat32(new Float32Array([1, -2.5, 3e-8, 4, 5, 6]), [2, 3])],
    ["half", fromFloat32(new Float32Array([0.5, -1, 65504]), [3], "F16")], // odd byte count: later tensors must still line up
    ["brain", fromFloat32(new Float32Array([1, -5, 3.140625]), [3], "BF16")],
    ["scalar", fromFloat32(new Float32Array([42]), [])],
    ["empty", { dtype: "F32", shape: [0, 4], bytes: new Uint8Array(0) }],
    ["10", { dtype: "I64", shape: [2], bytes: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]) }],
    ["2", { dtype: "U8", shape: [3], bytes: new Uint8Array([7, 8, 9]) }],
  ]);
}

function headerOf(buf: Uint8Array): string {
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  return Buffer.from(buf.subarray(8, 8 + n)).toString("utf8");
}

test("tensors and metadata survive serialize -> parse unchanged", () => {
  const tensors = sample();
  const metadata = { format: "pt", note: "ünïcode \"quoted\"" };
  const parsed = parseSafetensors(serializeSafetensors(tensors, metadata), "roundtrip");
  assert.deepEqual([...parsed.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [name, t] of tensors) {
    const got = parsed.tensors.get(name)!;
    assert.equal(got.dtype, t.dtype, name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.deepEqual(Buffer.from(got.bytes), Buffer.from(t.bytes), name);
  }
  assert.deepEqual(parsed.metadata, metadata);
  assert.deepEqual([...toFloat32(parsed.tensors.get("model.w")!)], [...new Float32Array([1, -2.5, 3e-8, 4, 5, 6])]);
  assert.deepEqual([...toFloat32(parsed.tensors.get("scalar")!)], [42]);
  assert.equal(toFloat32(parsed.tensors.get("empty")!).length, 0);
  assert.deepEqual(parseSafetensors(serializeSafetensors(new Map())), { tensors: new Map(), metadata: {} });
});

test("a loaded file saves byte-identically, with an 8-aligned space-padded header and HF tensor order", () => {
  const bytes = serializeSafetensors(sample(), { format: "pt" });
  const again = parseSafetensors(bytes);
  assert.deepEqual(Buffer.from(serializeSafetensors(again.tensors, again.metadata)), Buffer.from(bytes));
  const header = headerOf(bytes);
  assert.equal((8 + Buffer.byteLength(header)) % 8, 0);
  assert.match(header, /^\{"__metadata__":\{"format":"pt"\},.*\} *$/);
  // HF order: dtype descending (I64 > F32 > BF16 > F16 > U8), then name; integer-like names keep their place.
  const order = ["10", "empty", "model.w", "scalar", "brain", "half", "2"];
  const positions = order.map((name) => header.indexOf(`"${name}":{`));
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
  const parsedHeader = JSON.parse(header) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const dataStart = 8 + Buffer.byteLength(header);
  for (const name of order) {
    const { dtype, data_offsets: [begin] } = parsedHeader[name]!;
    const size = { I64: 8, F32: 4, BF16: 2, F16: 2, U8: 1 }[dtype]!;
    assert.equal((dataStart + begin) % size, 0, `${name} is aligned`);
  }
});

test("a hand-written file matches the spec byte for byte", () => {
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  assert.equal(json.length, 54); // padded with 2 spaces to 56 = 0x38
  const file = new Uint8Array([
    0x38, 0, 0, 0, 0, 0, 0, 0,
    ...Buffer.from(json + "  ", "ascii"),
    0x00, 0x00, 0x80, 0x3f, // 1.0f
    0x00, 0x00, 0x00, 0x40, // 2.0f
  ]);
  const parsed = parseSafetensors(file, "hand.safetensors");
  const a = parsed.tensors.get("a")!;
  assert.equal(a.dtype, "F32");
  assert.deepEqual(a.shape, [2]);
  assert.deepEqual([...toFloat32(a)], [1, 2]);
  assert.deepEqual(parsed.metadata, {});
  assert.deepEqual(Buffer.from(serializeSafetensors(new Map([["a", fromFloat32(new Float32Array([1, 2]), [2])]]))), Buffer.from(file));
});

test("F16 and BF16 decode to exact values", () => {
  assert.equal(f16(0x3c00), 1);
  assert.equal(f16(0xc000), -2);
  assert.equal(f16(0x7bff), 65504);
  assert.equal(f16(0x0001), 5.960464477539063e-8);
  assert.equal(f16(0x03ff), 6.097555160522461e-5); // largest subnormal, 1023 * 2^-24
  assert.equal(f16(0x0400), 2 ** -14);
  assert.equal(f16(0x3555), 0.333251953125);
  assert.equal(f16(0x7c00), Infinity);
  assert.equal(f16(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16(0x7e00)));
  assert.ok(Object.is(f16(0x8000), -0));
  assert.equal(bf16(0x3f80), 1);
  assert.equal(bf16(0xc0a0), -5);
  assert.equal(bf16(0x4049), 3.140625);
  assert.equal(bf16(0x0001), 2 ** -133); // BF16 subnormal
  assert.equal(bf16(0xff80), -Infinity);
});

test("toFloat32 copies F32 from unaligned views, rounds F64 and rejects integer dtypes", () => {
  const raw = new Uint8Array(9);
  new DataView(raw.buffer).setFloat32(1, 1.5, true);
  new DataView(raw.buffer).setFloat32(5, -3, true);
  const view = raw.subarray(1);
  const out = toFloat32({ dtype: "F32", shape: [2], bytes: view });
  assert.deepEqual([...out], [1.5, -3]);
  out[0] = 9;
  assert.equal(new DataView(raw.buffer).getFloat32(1, true), 1.5, "result is a copy");
  const f64 = new Uint8Array(new Float64Array([0.1, 1 + 2 ** -24, 1 + 3 * 2 ** -24]).buffer);
  assert.deepEqual([...toFloat32({ dtype: "F64", shape: [3], bytes: f64 })], [Math.fround(0.1), 1, 1 + 2 ** -22]);
  assert.throws(() => toFloat32({ dtype: "I64", shape: [1], bytes: new Uint8Array(8) }), /I64 is an integer/);
  assert.throws(() => toFloat32({ dtype: "F32", shape: [3], bytes: new Uint8Array(8) }), /do not match shape/);
});

test("fromFloat32 rounds to nearest, ties to even", () => {
  assert.equal(toF16Bits(1), 0x3c00);
  assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00); // halfway between 0x3c00 and 0x3c01: even wins
  assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02); // halfway between 0x3c01 and 0x3c02 = 1 + 2^-9
  assert.equal(toF16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01); // just past halfway
  assert.equal(toF16Bits(65519), 0x7bff);
  assert.equal(toF16Bits(65520), 0x7c00); // halfway to 2^16 rounds to even, i.e. Inf
  assert.equal(toF16Bits(-1e6), 0xfc00);
  assert.equal(toF16Bits(2 ** -25), 0x0000); // halfway between 0 and the smallest subnormal
  assert.equal(toF16Bits(3 * 2 ** -25), 0x0002);
  assert.equal(toF16Bits(2 ** -25 + 2 ** -35), 0x0001);
  assert.equal(toF16Bits(2 ** -14 - 2 ** -25), 0x0400); // top subnormal rounds up into the first normal
  assert.equal(toF16Bits(-0), 0x8000);
  assert.equal(toF16Bits(NaN) & 0x7e00, 0x7e00);
  assert.equal(toBf16Bits(1 + 2 ** -8), 0x3f80);
  assert.equal(toBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(toBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(toBf16Bits(3.4028234663852886e38), 0x7f80); // F32 max is past BF16 max + half an ulp
  assert.equal(toBf16Bits(-5), 0xc0a0);
  const nanWithLowPayload = new Float32Array(new Uint32Array([0x7f800001]).buffer);
  assert.ok(Number.isNaN(bf16(new Uint16Array(fromFloat32(nanWithLowPayload, [1], "BF16").bytes.buffer)[0]!)));
  assert.throws(() => fromFloat32(new Float32Array(3), [2, 2]), /3 values do not fit shape \[2,2\]/);
});

test("every F16 and BF16 bit pattern survives toFloat32 -> fromFloat32 exactly, NaN payloads and signs included", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bytes = new Uint8Array(all.buffer);
  for (const dtype of ["F16", "BF16"] as const) {
    const floats = toFloat32({ dtype, shape: [65536], bytes });
    const back = new Uint16Array(fromFloat32(floats, [65536], dtype).bytes.buffer);
    const wrong = all.filter((i) => back[i] !== i);
    assert.equal(wrong.length, 0, `${dtype}: ${wrong.length} patterns changed, first 0x${wrong[0]?.toString(16)} -> 0x${back[wrong[0] ?? 0]?.toString(16)}`);
  }
});

const python = "/usr/bin/python3";
const hasTorch = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0;

test("float32 -> bf16 and -> f16 round to nearest even exactly as PyTorch does (ties, subnormals, overflow, inf, NaN)", { skip: hasTorch ? false : "PyTorch absent at /usr/bin/python3 (apt-get install python3-torch): skipped" }, () => {
  const edges = [
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, // ±0, ±1
    0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, // bf16 ties to even (1 + 2^-8 down, 1 + 3·2^-8 up) and either side
    0x3f801000, 0x3f803000, 0x3f801001, // f16 ties (1 + 2^-11, 1 + 3·2^-11) and just past
    0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x7f7f7fff, // float32 max overflows bf16 to inf; the exact tie to inf rounds up (0x7f7f is odd)
    0x477fe000, 0x477fefff, 0x477ff000, 0x47800000, 0xc77ff000, // f16: 65504, below the tie, the tie (65520 -> inf), 2^16, -65520
    0x7f800000, 0xff800000, 0x7fc00000, // inf, -inf, NaN
    0x00000001, 0x00008000, 0x00018000, 0x007fffff, 0x807fffff, 0x00800000, // float32 subnormals: bf16 ties, the top one rounds into the normals
    0x33800000, 0x33000000, 0x33400000, 0x33000001, 0x387fc000, 0x387ff000, 0x38800000, // f16 subnormal range: 2^-24, the 2^-25 tie, 3·2^-26, just past, near 2^-14
  ];
  const rng = new Rng(5);
  const randomFinite = Array.from({ length: 4000 }, () => {
    const b = Math.floor(rng.next() * 2 ** 32);
    return (b & 0x7f800000) === 0x7f800000 ? b & 0xbfffffff : b; // no NaN or inf from the random draw
  });
  const bits = [...edges, ...randomFinite];
  const script = [
    "import sys, json, torch",
    "bits = json.load(sys.stdin)",
    "t = torch.tensor([b - (1 << 32) if b >= (1 << 31) else b for b in bits], dtype=torch.int32).view(torch.float32)",
    "print(json.dumps({n: [v & 0xFFFF for v in t.to(d).view(torch.int16).tolist()] for n, d in (('BF16', torch.bfloat16), ('F16', torch.float16))}))",
  ].join("\n");
  const r = spawnSync(python, ["-c", script], { input: JSON.stringify(bits), encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, r.stderr);
  const torch = JSON.parse(r.stdout) as Record<"BF16" | "F16", number[]>;
  const floats = new Float32Array(new Uint32Array(bits).buffer);
  for (const dtype of ["BF16", "F16"] as const) {
    const ours = new Uint16Array(fromFloat32(floats, [bits.length], dtype).bytes.buffer);
    const isNan = (h: number): boolean => Number.isNaN(toFloat32({ dtype, shape: [], bytes: u16(h) })[0]);
    bits.forEach((b, i) => {
      const want = torch[dtype][i]!, got = ours[i]!;
      // PyTorch's vectorised bf16 path writes NaN as 0xffff, its scalar path as 0x7fc0: only NaN-ness is defined.
      if (isNan(want)) assert.ok(isNan(got), `${dtype} of 0x${b.toString(16)}: NaN expected, got 0x${got.toString(16)}`);
      else assert.equal(got, want, `${dtype} of 0x${b.toString(16).padStart(8, "0")} (${floats[i]}): ours 0x${got.toString(16)}, torch 0x${want.toString(16)}`);
    });
  }
  // The cases the brief singles out, stated outright as well.
  assert.equal(toBf16Bits(3.4028234663852886e38), 0x7f80);
  assert.equal(toBf16Bits(Infinity), 0x7f80);
  assert.equal(toBf16Bits(-Infinity), 0xff80);
  assert.ok(Number.isNaN(bf16(toBf16Bits(NaN))));
});

test("openSafetensors reads the header alone, then one tensor at a time, agreeing with parse + toFloat32", (t) => {
  const path = join(tempDir(t), "model.safetensors");
  writeSafetensors(path, sample(), { format: "pt" });
  const header = readSafetensorsHeader(path);
  assert.deepEqual(header.metadata, { format: "pt" });
  assert.deepEqual(header.tensors.get("brain"), { dtype: "BF16", shape: [3], begin: header.tensors.get("brain")!.begin, end: header.tensors.get("brain")!.begin + 6 });
  const whole = readSafetensors(path);
  const reader = openSafetensors(path);
  try {
    for (const name of ["model.w", "half", "brain", "scalar", "empty"]) {
      assert.deepEqual([...reader.readFloat32(name)], [...toFloat32(whole.tensors.get(name)!)], name);
    }
    assert.throws(() => reader.readFloat32("10"), /tensor 10 is I64, not a floating-point type/);
    assert.throws(() => reader.readFloat32("nope"), /no tensor nope/);
  } finally {
    reader.close();
  }
  assert.throws(() => reader.readFloat32("brain"), /after close/);
  writeFileSync(path, readFileSync(path).subarray(0, 20));
  assert.throws(() => openSafetensors(path), (e: unknown) => e instanceof Error && e.message.startsWith(`${path}: header length`));
});

test("malformed files are rejected with errors naming the source", () => {
  const src = "bad.safetensors";
  const withHeader = (header: string, data = new Uint8Array(0)): Uint8Array => {
    const json = Buffer.from(header);
    const buf = new Uint8Array(8 + json.length + data.length);
    new DataView(buf.buffer).setBigUint64(0, BigInt(json.length), true);
    buf.set(json, 8);
    buf.set(data, 8 + json.length);
    return buf;
  };
  const tensor = (name: string, dtype: string, shape: number[], offsets: number[]) =>
    `${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: offsets })}`;
  const cases: [string, Uint8Array, RegExp][] = [
    ["short file", new Uint8Array(5), /5 bytes, shorter than/],
    ["header past end", (() => { const b = new Uint8Array(20); b[0] = 100; return b; })(), /header length 100 runs past the end of the 20-byte file/],
    ["header over 100 MB", (() => { const b = new Uint8Array(16); b[5] = 1; return b; })(), /exceeds the 100000000-byte limit/],
    ["not JSON", withHeader("{not json"), /not valid UTF-8 JSON/],
    ["bad UTF-8", withHeader("{}").fill(0xff, 9, 10), /not valid UTF-8 JSON/],
    ["JSON array", withHeader("[]"), /not a JSON object/],
    ["size mismatch", withHeader(`{${tensor("w", "F32", [3], [0, 8])}}`, new Uint8Array(8)), /"w": 8 bytes stored but shape \[3\] of F32 needs 12/],
    ["end past data", withHeader(`{${tensor("w", "F32", [2], [0, 8])}}`, new Uint8Array(4)), /"w": data_offsets \[0, 8\] out of range/],
    ["begin after end", withHeader(`{${tensor("w", "U8", [0], [4, 0])}}`, new Uint8Array(4)), /out of range/],
    ["negative offset", withHeader(`{${tensor("w", "U8", [2], [-2, 0])}}`, new Uint8Array(4)), /not a pair of non-negative integers/],
    ["overlap", withHeader(`{${tensor("a", "F32", [2], [0, 8])},${tensor("b", "F32", [1], [4, 8])}}`, new Uint8Array(8)), /"b" overlaps tensor "a"/],
    ["unknown dtype", withHeader(`{${tensor("w", "F8_E4M3", [4], [0, 4])}}`, new Uint8Array(4)), /"w": unknown dtype "F8_E4M3"/],
    ["bad shape", withHeader(`{${tensor("w", "U8", [1.5], [0, 1])}}`, new Uint8Array(1)), /shape \[1.5\] is not a list/],
    ["bad metadata", withHeader('{"__metadata__":{"epoch":3}}'), /__metadata__.epoch is not a string/],
  ];
  for (const [what, buf, pattern] of cases) {
    assert.throws(() => parseSafetensors(buf, src), (e: unknown) => {
      assert.ok(e instanceof Error, what);
      assert.ok(e.message.startsWith(`${src}: `), `${what}: ${e.message}`);
      assert.match(e.message, pattern, what);
      return true;
    }, what);
  }
  // Gaps are tolerated (the data is still unambiguous), so a sound file with one still parses.
  const gap = parseSafetensors(withHeader(`{${tensor("a", "U8", [1], [3, 4])}}`, new Uint8Array([0, 0, 0, 7])), src);
  assert.deepEqual([...gap.tensors.get("a")!.bytes], [7]);
});

test("serialize refuses tensors whose bytes do not match their shape", () => {
  assert.throws(() => serializeSafetensors(new Map([["w", { dtype: "F32", shape: [3], bytes: new Uint8Array(8) }]])),
    /tensor "w": has 8 bytes but shape \[3\] of F32 needs 12/);
  assert.throws(() => serializeSafetensors(new Map([["__metadata__", fromFloat32(new Float32Array(1), [1])]])), /reserved/);
});

test("writeSafetensors writes atomically and readSafetensors reads it back, naming the path on errors", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "model.safetensors");
  writeSafetensors(path, sample(), { step: "3" });
  assert.equal(existsSync(`${path}.tmp`), false);
  assert.deepEqual(Buffer.from(readFileSync(path)), Buffer.from(serializeSafetensors(sample(), { step: "3" })));
  const loaded = readSafetensors(path);
  assert.deepEqual(loaded.metadata, { step: "3" });
  assert.deepEqual([...toFloat32(loaded.tensors.get("brain")!)], [1, -5, 3.140625]);
  writeSafetensors(path, new Map([["x", fromFloat32(new Float32Array([7]), [1])]])); // overwrite in place
  assert.deepEqual([...readSafetensors(path).tensors.keys()], ["x"]);
  const bad = join(dir, "broken.safetensors");
  writeFileSync(bad, "abc");
  assert.throws(() => readSafetensors(bad), (e: unknown) => e instanceof Error && e.message.startsWith(`${bad}: `));
});
