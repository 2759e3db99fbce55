#!/usr/bin/env node
/**
 * Does onnxruntime-node's bundled WebGPU execution provider work here, and does it agree with the CPU provider?
 *
 *   scripts/gpu/setup-lavapipe.sh && . .tools/lavapipe/env.sh && node scripts/gpu/webgpu-check.mjs [options]
 *   node scripts/gpu/webgpu-check.mjs --lavapipe [options]      (same, sourcing env.sh for itself)
 *
 * Default: one session on executionProviders ["webgpu"] for Y = MatMul(A, B), Z = Softmax(Y) with A, B [N, N]
 * (N = 256), run, compared with the "cpu" provider; prints the max abs difference, where each node ran, and
 * timings (session create, first run = shader compilation, median of the further runs, the CPU EP's median).
 *   --size N        matrix size (256)            --runs N     runs per session (5)
 *   --tol X         max abs difference allowed (1e-4)
 *   --ops           also one small graph per operator a transformer training graph needs (opset 17, or
 *                   --opset N), each reported as WEBGPU, CPU-FALLBACK, DIFFERS or FAIL, then a 36-node
 *                   training-like graph (embedding, RMS norm, attention, NLL, embedding gradient)
 *   --lavapipe      re-run under .tools/lavapipe/env.sh (from scripts/gpu/setup-lavapipe.sh): LD_LIBRARY_PATH
 *                   only takes effect at process start, so the env cannot be applied from inside node
 *   --json          one JSON object on stdout instead of the text report
 *   --ort-log LEVEL ORT's own log level (default error); "info" shows why a node went to the CPU
 *                   ("webgpu kernel not found in registries for Op type: ...")
 *
 * Exit status: 0 OK; 1 WebGPU unavailable (no adapter, EP failed to initialise), a MatMul/Softmax node not
 * placed on WebGPU, or a difference > --tol (with --ops also: any op failing or differing; CPU fallbacks are
 * reported, not failures); 2 bad usage.
 *
 * How the EP is selected: onnxruntime-node lists "webgpu" as bundled (listSupportedBackends()) and takes it
 * from sessionOptions.executionProviders as "webgpu" or { name: "webgpu", preferredLayout?, validationMode?,
 * storageBufferCacheMode?, forceCpuNodeNames?, ... } (any other key: "Invalid argument: WebGPU EP has an
 * unrecognized option: '<key>'."). No other session option is needed. Nodes the EP has no kernel for are
 * silently given to the CPU EP (always appended); session profiling (enableProfiling) records each node's
 * provider, which is how placement is checked here. Without a usable Vulkan driver, InferenceSession.create
 * rejects with "... Failed to get a WebGPU adapter: No supported adapters"; Dawn prints the cause to stderr
 * ("Warning: Couldn't load Vulkan: libvulkan.so.1: ...", "Warning: vkCreateInstance: Found no drivers!", ...).
 */
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");

// ------------------------------------------------------------------------------------------------ arguments

const ORT_LOG_LEVELS = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 };

function parseArgs(argv) {
  const opts = { size: 256, runs: 5, ops: false, opset: 17, json: false, lavapipe: false, ortLog: "error", tol: 1e-4 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) usage(`${a} needs a positive integer`);
      return v;
    };
    if (a === "--size") opts.size = num();
    else if (a === "--runs") opts.runs = num();
    else if (a === "--opset") opts.opset = num();
    else if (a === "--ops") opts.ops = true;
    else if (a === "--tol") {
      opts.tol = Number(argv[++i]);
      if (!(opts.tol > 0)) usage("--tol needs a positive number");
    }
    else if (a === "--json") opts.json = true;
    else if (a === "--lavapipe") opts.lavapipe = true;
    else if (a === "--ort-log") {
      opts.ortLog = argv[++i];
      if (!(opts.ortLog in ORT_LOG_LEVELS)) usage(`--ort-log takes one of ${Object.keys(ORT_LOG_LEVELS).join(", ")}`);
    }
    else if (a === "-h" || a === "--help") usage(null);
    else usage(`unknown argument ${a}`);
  }
  return opts;
}

function usage(err) {
  const text = "usage: node scripts/gpu/webgpu-check.mjs [--size N] [--runs N] [--tol X] [--ops] [--opset N] [--json] [--lavapipe] [--ort-log verbose|info|warning|error|fatal]";
  if (err) {
    console.error(`webgpu-check: ${err}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));

if (opts.lavapipe && !process.env.WEBGPU_CHECK_REEXEC) {
  const envFile = join(ROOT, ".tools", "lavapipe", "env.sh");
  if (!existsSync(envFile)) {
    console.error(`webgpu-check: ${envFile} is missing — run scripts/gpu/setup-lavapipe.sh first`);
    process.exit(1);
  }
  const args = process.argv.slice(2).filter((a) => a !== "--lavapipe");
  const r = spawnSync("bash", ["-c", '. "$0" && exec "$@"', envFile, process.execPath, fileURLToPath(import.meta.url), ...args], {
    stdio: "inherit",
    env: { ...process.env, WEBGPU_CHECK_REEXEC: "1" },
  });
  process.exit(r.status ?? 1);
}

// ------------------------------------------------------------------------------------------------ ONNX bytes

/** Minimal protobuf writer: enough of onnx.proto for small graphs. */
class Pb {
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

const ONNX_TYPE = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 };

function typedArrayFor(dtype, n) {
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

function valueInfo(name, dtype, shape) {
  const shp = new Pb();
  for (const d of shape) shp.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, ONNX_TYPE[dtype]).msg(2, shp);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

function tensorProto(name, dtype, dims, data) {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, ONNX_TYPE[dtype]).str(8, name);
  t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return t;
}

function attribute(name, v) {
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
function buildModel(spec, opset) {
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

let seed = 12345;
function rand() {
  // xorshift32: reproducible inputs.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}

/** gen: "sym" uniform [-1, 1), "pos" [0.1, 2.1), "int:K" integers in [0, K), "bool". */
function makeData(dtype, shape, gen = "sym") {
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

const i64 = (...v) => BigInt64Array.from(v.map(BigInt));

// ------------------------------------------------------------------------------------------------ ORT

const require = createRequire(join(ROOT, "package.json"));
let ort;
try {
  ort = require("onnxruntime-node");
  ort.env.logLevel = opts.ortLog;
} catch (e) {
  fail(`onnxruntime-node failed to load: ${e instanceof Error ? e.message : e}`);
}

function fail(msg, extra = {}) {
  if (opts.json) console.log(JSON.stringify({ ok: false, error: msg, ...extra }));
  else console.error(`webgpu-check: FAIL: ${msg}`);
  process.exit(1);
}

/** The error text turned into the product-facing reason. */
function classifyError(text) {
  if (/adapter/i.test(text)) return "no WebGPU adapter";
  if (/device/i.test(text)) return "WebGPU device creation failed";
  return "WebGPU execution provider failed";
}

async function createSession(model, ep, profileDir) {
  const options = {
    executionProviders: [ep],
    graphOptimizationLevel: "all",
    logSeverityLevel: ORT_LOG_LEVELS[opts.ortLog],
  };
  if (profileDir) {
    options.enableProfiling = true;
    options.profileFilePrefix = join(profileDir, "ort");
  }
  return ort.InferenceSession.create(model, options);
}

function makeFeeds(inputs) {
  const feeds = {};
  for (const v of inputs) feeds[v.name] = new ort.Tensor(v.dtype, v.data, v.shape);
  return feeds;
}

/** Per-node provider from ORT's profile JSON (node events carry args.provider). */
function placements(profileDir) {
  const byNode = {};
  for (const f of readdirSync(profileDir)) {
    if (!f.endsWith(".json")) continue;
    let events;
    try {
      events = JSON.parse(readFileSync(join(profileDir, f), "utf8"));
    } catch {
      continue;
    }
    for (const e of events) {
      if (e.cat !== "Node" || !e.args?.provider || !e.name.endsWith("_kernel_time")) continue;
      const node = e.name.slice(0, -"_kernel_time".length);
      byNode[node] = { op: e.args.op_name, provider: e.args.provider.replace(/ExecutionProvider$/, "") };
    }
  }
  return byNode;
}

function compare(a, b) {
  if (a.type !== b.type) return { maxAbs: Infinity, mismatches: a.size, note: `dtype ${a.type} vs ${b.type}` };
  if (a.dims.join() !== b.dims.join()) return { maxAbs: Infinity, mismatches: a.size, note: `shape [${a.dims}] vs [${b.dims}]` };
  let maxAbs = 0;
  let mismatches = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (a.type === "float32" || a.type === "float16") {
      const d = Math.abs(a.data[i] - b.data[i]);
      if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
      if (!(d <= opts.tol)) mismatches++;
    } else if (a.data[i] !== b.data[i]) {
      mismatches++;
      maxAbs = Math.max(maxAbs, Math.abs(Number(a.data[i]) - Number(b.data[i])));
    }
  }
  return { maxAbs, mismatches };
}

const ms = (t) => Math.round(t * 10) / 10;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

/**
 * Runs one spec on cpu and webgpu. Returns { ok, error?, reason?, placement, diffs, timings }.
 */
async function runCase(spec, { runs = 1, requireAllOnGpu = false } = {}) {
  const model = buildModel(spec, opts.opset);
  const feeds = () => makeFeeds(spec.inputs);
  const outNames = spec.outputs.map((o) => o.name);

  const cpu = await createSession(model, "cpu");
  let want;
  const cpuTimes = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    want = await cpu.run(feeds(), outNames);
    cpuTimes.push(performance.now() - t);
  }
  await cpu.release();
  const cpuMedianMs = ms(median(cpuTimes.length > 1 ? cpuTimes.slice(1) : cpuTimes));

  const profileDir = mkdtempSync(join(tmpdir(), "webgpu-check-"));
  const result = { ok: false, placement: {}, diffs: {}, timings: {} };
  let sess;
  try {
    let t = performance.now();
    try {
      sess = await createSession(model, "webgpu", profileDir);
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      return { ...result, stage: "create", error: text, reason: classifyError(text) };
    }
    result.timings.createMs = ms(performance.now() - t);
    let got;
    const runTimes = [];
    for (let r = 0; r < runs; r++) {
      t = performance.now();
      try {
        got = await sess.run(feeds(), outNames);
      } catch (e) {
        const text = e instanceof Error ? e.message : String(e);
        return { ...result, stage: "run", error: text, reason: "WebGPU run failed" };
      }
      runTimes.push(performance.now() - t);
    }
    result.timings.firstRunMs = ms(runTimes[0]);
    if (runTimes.length > 1) result.timings.medianRunMs = ms(median(runTimes.slice(1)));
    result.timings.cpuMedianRunMs = cpuMedianMs;
    sess.endProfiling();
    result.placement = placements(profileDir);
    let ok = true;
    for (const name of outNames) {
      const d = compare(got[name], want[name]);
      result.diffs[name] = d;
      if (d.mismatches > 0) ok = false;
    }
    const specNodes = spec.nodes.map((n, i) => n.name ?? `${n.op}_${i}`);
    // Every node ORT ran outside WebGPU, including nodes its optimisers renamed or added (copies excluded).
    result.cpuNodes = Object.entries(result.placement)
      .filter(([, v]) => v.provider !== "WebGpu" && !v.op.startsWith("Memcpy"))
      .map(([k, v]) => `${k} (${v.op})`);
    result.unseenNodes = specNodes.filter((n) => !result.placement[n]);
    if (requireAllOnGpu && result.cpuNodes.length > 0) ok = false;
    result.ok = ok;
    return result;
  } finally {
    if (sess) await sess.release().catch(() => {});
    rmSync(profileDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------ graphs

function matmulSoftmaxSpec(n) {
  return {
    nodes: [
      { op: "MatMul", name: "matmul", inputs: ["A", "B"], outputs: ["Y"] },
      { op: "Softmax", name: "softmax", inputs: ["Y"], outputs: ["Z"], attrs: { axis: -1 } },
    ],
    inputs: [
      { name: "A", dtype: "float32", shape: [n, n], data: makeData("float32", [n, n]) },
      { name: "B", dtype: "float32", shape: [n, n], data: makeData("float32", [n, n]) },
    ],
    outputs: [
      { name: "Y", dtype: "float32", shape: [n, n] },
      { name: "Z", dtype: "float32", shape: [n, n] },
    ],
  };
}

const F = "float32";
const inp = (name, dtype, shape, gen) => ({ name, dtype, shape, data: makeData(dtype, shape, gen) });
const init = (name, dtype, dims, data) => ({ name, dtype, dims, data });
const out = (name, dtype = F) => ({ name, dtype });
const one = (op, inputs, attrs, extra = {}) => ({
  nodes: [{ op, name: op.toLowerCase(), inputs: inputs.map((x) => x.name ?? x), outputs: ["Y"], attrs }],
  inputs: inputs.filter((x) => x.data && !x.dims),
  initializers: inputs.filter((x) => x.dims),
  outputs: [out("Y", extra.outDtype ?? F)],
});

const X3 = [2, 8, 16];

/** One graph per operator: [label, spec]. int64 shape/axes operands are initializers, as in real graphs. */
function opCases() {
  const unary = (op, gen = "sym") => [op, one(op, [inp("X", F, X3, gen)])];
  const binary = (op) => [op, one(op, [inp("X", F, X3), inp("W", F, [16])])];
  return [
    ["MatMul", one("MatMul", [inp("X", F, [2, 8, 16]), inp("W", F, [16, 12])])],
    ["Gather", one("Gather", [inp("E", F, [50, 16]), inp("I", "int64", [2, 7], "int:50")], { axis: 0 })],
    ["Softmax", one("Softmax", [inp("X", F, X3)], { axis: -1 })],
    ["ReduceSum", one("ReduceSum", [inp("X", F, X3), init("axes", "int64", [1], i64(-1))], { keepdims: 1 })],
    binary("Mul"),
    binary("Add"),
    binary("Sub"),
    ["Div", one("Div", [inp("X", F, X3), inp("W", F, [16], "pos")])],
    unary("Sqrt", "pos"),
    unary("Exp"),
    unary("Log", "pos"),
    unary("Neg"),
    ["Where", one("Where", [inp("C", "bool", X3, "bool"), inp("X", F, X3), inp("W", F, X3)])],
    [
      "ScatterND(add)",
      {
        // Repeated indices: the embedding-gradient pattern (rows that repeat add up).
        nodes: [{ op: "ScatterND", name: "scatternd", inputs: ["D", "I", "U"], outputs: ["Y"], attrs: { reduction: "add" } }],
        inputs: [inp("D", F, [10, 16]), { name: "I", dtype: "int64", shape: [6, 1], data: i64(1, 3, 1, 7, 3, 1) }, inp("U", F, [6, 16])],
        outputs: [out("Y")],
      },
    ],
    [
      "ScatterND(none)",
      {
        nodes: [{ op: "ScatterND", name: "scatternd", inputs: ["D", "I", "U"], outputs: ["Y"] }],
        inputs: [inp("D", F, [10, 16]), { name: "I", dtype: "int64", shape: [3, 1], data: i64(1, 3, 7) }, inp("U", F, [3, 16])],
        outputs: [out("Y")],
      },
    ],
    ["Transpose", one("Transpose", [inp("X", F, X3)], { perm: [0, 2, 1] })],
    ["Reshape", one("Reshape", [inp("X", F, X3), init("shape", "int64", [2], i64(16, -1))])],
    ["Concat", one("Concat", [inp("X", F, X3), inp("W", F, [2, 3, 16])], { axis: 1 })],
    [
      "Slice",
      one("Slice", [inp("X", F, X3), init("starts", "int64", [2], i64(1, 0)), init("ends", "int64", [2], i64(7, 16)), init("axes", "int64", [2], i64(1, 2)), init("steps", "int64", [2], i64(2, 3))]),
    ],
    ["Expand", one("Expand", [inp("X", F, [1, 16]), init("shape", "int64", [3], i64(2, 8, 16))])],
    ["Cast(float->int32)", one("Cast", [inp("X", F, X3)], { to: ONNX_TYPE.int32 }, { outDtype: "int32" })],
    ["Cast(int64->float)", one("Cast", [inp("X", "int64", X3, "int:100")], { to: ONNX_TYPE.float32 })],
    ["Cast(bool->float)", one("Cast", [inp("X", "bool", X3, "bool")], { to: ONNX_TYPE.float32 })],
    ["Cast(float->int64)", one("Cast", [inp("X", F, X3)], { to: ONNX_TYPE.int64 }, { outDtype: "int64" })],
    ["Equal(int64)", one("Equal", [inp("X", "int64", X3, "int:4"), init("K", "int64", [], i64(2))], undefined, { outDtype: "bool" })],
    ["Equal(float)", one("Equal", [inp("X", F, X3, "int:4"), inp("W", F, X3, "int:4")], undefined, { outDtype: "bool" })],
    // int64 as data (not as indices or shapes): how the EP treats token-id arithmetic, and int32 alternatives.
    ["Equal(int32)", one("Equal", [inp("X", "int32", X3, "int:4"), inp("W", "int32", X3, "int:4")], undefined, { outDtype: "bool" })],
    ["Cast(int32->float)", one("Cast", [inp("X", "int32", X3, "int:100")], { to: ONNX_TYPE.float32 })],
    ["Cast(int64->int32)", one("Cast", [inp("X", "int64", X3, "int:100")], { to: ONNX_TYPE.int32 }, { outDtype: "int32" })],
    ["Reshape(int64 data)", one("Reshape", [inp("X", "int64", X3, "int:100"), init("shape", "int64", [2], i64(16, -1))], undefined, { outDtype: "int64" })],
    ["Unsqueeze(int64 data)", one("Unsqueeze", [inp("X", "int64", X3, "int:100"), init("axes", "int64", [1], i64(-1))], undefined, { outDtype: "int64" })],
    ["Concat(int64 data)", one("Concat", [inp("X", "int64", X3, "int:100"), inp("W", "int64", X3, "int:100")], { axis: 0 }, { outDtype: "int64" })],
    ["Gather(int32 indices)", one("Gather", [inp("E", F, [50, 16]), inp("I", "int32", [2, 7], "int:50")], { axis: 0 })],
    // Further ops the project's graph builder emits (src/core/engine/ort).
    unary("Sigmoid"),
    unary("Relu"),
    unary("Abs"),
    unary("Tanh"),
    unary("Softplus"),
    unary("Reciprocal", "pos"),
    ["Pow", one("Pow", [inp("X", F, X3, "pos"), inp("W", F, [16])])],
    ["LogSoftmax", one("LogSoftmax", [inp("X", F, X3)], { axis: -1 })],
    ["ReduceMean", one("ReduceMean", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["ReduceSumSquare", one("ReduceSumSquare", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["ReduceMax", one("ReduceMax", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["Sum(3)", one("Sum", [inp("X", F, X3), inp("W", F, X3), inp("V", F, X3)])],
    ["Max", one("Max", [inp("X", F, X3), inp("W", F, X3)])],
    ["Min", one("Min", [inp("X", F, X3), inp("W", F, X3)])],
    ["Greater", one("Greater", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["Less", one("Less", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["GreaterOrEqual", one("GreaterOrEqual", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["LessOrEqual", one("LessOrEqual", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["Gemm(transB)", one("Gemm", [inp("X", F, [8, 16]), inp("W", F, [12, 16]), inp("V", F, [8, 12])], { transB: 1 })],
    ["Unsqueeze", one("Unsqueeze", [inp("X", F, X3), init("axes", "int64", [1], i64(-1))])],
    ["Squeeze", one("Squeeze", [inp("X", F, [2, 1, 16]), init("axes", "int64", [1], i64(1))])],
    [
      "Split",
      {
        nodes: [{ op: "Split", name: "split", inputs: ["X", "sizes"], outputs: ["Y", "Y2"], attrs: { axis: -1 } }],
        inputs: [inp("X", F, X3)],
        initializers: [init("sizes", "int64", [2], i64(6, 10))],
        outputs: [out("Y"), out("Y2")],
      },
    ],
    ["GatherElements", one("GatherElements", [inp("X", F, X3), inp("I", "int64", [2, 8, 1], "int:16")], { axis: -1 })],
    ["ScatterElements(add)", one("ScatterElements", [inp("X", F, X3), inp("I", "int64", [2, 8, 1], "int:16"), inp("U", F, [2, 8, 1])], { axis: -1, reduction: "add" })],
    ["Range", one("Range", [inp("S", F, [], "int:3"), init("L", F, [], Float32Array.of(20)), init("D", F, [], Float32Array.of(1.5))])],
    [
      "Shape+ConstantOfShape",
      {
        nodes: [
          { op: "Shape", name: "shape", inputs: ["X"], outputs: ["S"] },
          { op: "ConstantOfShape", name: "constantofshape", inputs: ["S"], outputs: ["Y"], attrs: { value: { tensor: { dtype: F, dims: [1], data: Float32Array.of(0.5) } } } },
        ],
        // A symbolic batch dimension, or ORT folds Shape → ConstantOfShape into a constant.
        inputs: [{ ...inp("X", F, X3), shape: X3, symbolic: ["batch", 8, 16] }],
        outputs: [out("Y")],
      },
    ],
    ["Identity", one("Identity", [inp("X", F, X3)])],
  ];
}

/**
 * A forward+backward-flavoured slice of a transformer step: embedding Gather, RMS-style norm, attention scores,
 * masked softmax, log-softmax NLL via GatherElements, and the embedding gradient via ScatterND(add).
 */
function combinedSpec() {
  const V = 64, D = 32, T = 16, B = 2;
  const n = (op, inputs, outputs, attrs) => ({ op, inputs, outputs, attrs });
  return {
    nodes: [
      n("Gather", ["E", "tok"], ["h"], { axis: 0 }), // [B,T,D]
      n("Mul", ["h", "h"], ["h2"]),
      n("ReduceSum", ["h2", "axL"], ["ss"], { keepdims: 1 }),
      n("Div", ["ss", "Dk"], ["ms"]),
      n("Add", ["ms", "eps"], ["mse"]),
      n("Sqrt", ["mse"], ["rms"]),
      n("Div", ["h", "rms"], ["hn"]),
      n("MatMul", ["hn", "Wq"], ["q"]),
      n("MatMul", ["hn", "Wk"], ["k"]),
      n("Transpose", ["k"], ["kT"], { perm: [0, 2, 1] }),
      n("MatMul", ["q", "kT"], ["s"]),
      n("Where", ["mask", "s", "ninf"], ["sm"]),
      n("Softmax", ["sm"], ["p"], { axis: -1 }),
      n("MatMul", ["p", "hn"], ["ctx"]),
      n("Concat", ["ctx", "hn"], ["cat"], { axis: -1 }),
      n("Reshape", ["cat", "shp2"], ["flat"]), // [B*T, 2D]
      n("MatMul", ["flat", "Wo"], ["logits"]), // [B*T, V]
      n("Exp", ["logits"], ["el"]),
      n("ReduceSum", ["el", "axL"], ["se"], { keepdims: 1 }),
      n("Log", ["se"], ["lse"]),
      n("Sub", ["logits", "lse"], ["lp"]),
      n("Reshape", ["tok", "shp1"], ["tgt1"]),
      n("Unsqueeze", ["tgt1", "axL"], ["tgt"]),
      n("GatherElements", ["lp", "tgt"], ["tlp"], { axis: -1 }),
      n("Neg", ["tlp"], ["nll"]),
      n("Equal", ["tgt", "pad"], ["isPad"]),
      n("Cast", ["isPad"], ["padF"], { to: ONNX_TYPE.float32 }),
      n("Sub", ["one", "padF"], ["keep"]),
      n("Mul", ["nll", "keep"], ["nllk"]),
      n("ReduceSum", ["nllk", "ax0"], ["loss"], { keepdims: 0 }),
      n("Slice", ["hn", "st", "en", "ax1"], ["hs"]),
      n("Expand", ["rms", "shpE"], ["rmsE"]),
      n("Mul", ["hs", "rmsE"], ["g"]),
      n("Reshape", ["g", "shpG"], ["gflat"]),
      n("Reshape", ["tok", "shpI"], ["idx"]),
      n("ScatterND", ["Ezero", "idx", "gflat"], ["dE"], { reduction: "add" }),
    ].map((x, i) => ({ ...x, name: `${x.op.toLowerCase()}_${i}` })),
    inputs: [
      inp("E", F, [V, D]),
      inp("tok", "int64", [B, T], "int:" + V),
      inp("Wq", F, [D, D]),
      inp("Wk", F, [D, D]),
      inp("Wo", F, [2 * D, V]),
      inp("mask", "bool", [B, T, T], "bool"),
      { name: "Ezero", dtype: F, shape: [V, D], data: new Float32Array(V * D) },
    ],
    initializers: [
      init("axL", "int64", [1], i64(-1)),
      init("ax0", "int64", [1], i64(0)),
      init("ax1", "int64", [1], i64(1)),
      init("Dk", F, [], Float32Array.of(D)),
      init("eps", F, [], Float32Array.of(1e-5)),
      init("ninf", F, [], Float32Array.of(-1e9)),
      init("one", F, [], Float32Array.of(1)),
      init("pad", "int64", [], i64(0)),
      init("shp1", "int64", [1], i64(B * T)),
      init("shp2", "int64", [2], i64(B * T, 2 * D)),
      init("st", "int64", [1], i64(0)),
      init("en", "int64", [1], i64(T)),
      init("shpE", "int64", [3], i64(B, T, D)),
      init("shpG", "int64", [2], i64(B * T, D)),
      init("shpI", "int64", [2], i64(B * T, 1)),
    ],
    outputs: [out("loss"), out("dE"), out("p")],
  };
}

// ------------------------------------------------------------------------------------------------ main

const backends = (ort.listSupportedBackends?.() ?? []).map((b) => b.name);
const envInfo = {
  VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null,
  LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH ? "set" : null,
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? null,
};
if (backends.length && !backends.includes("webgpu")) fail(`this onnxruntime-node build does not bundle the webgpu EP (backends: ${backends.join(", ")})`);

const report = { ok: false, ortVersion: ort.env?.versions?.node ?? null, env: envInfo };

const main = await runCase(matmulSoftmaxSpec(opts.size), { runs: opts.runs, requireAllOnGpu: true });
report.matmulSoftmax = { size: opts.size, ...main };
if (main.error) {
  // Dawn's own reason (no libvulkan.so.1, no ICD, driver too old) went to stderr above.
  const icd = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  const hint = icd
    ? `Vulkan driver file ${icd}: see Dawn's warnings above; LD_LIBRARY_PATH must be set before node starts (source .tools/lavapipe/env.sh, or pass --lavapipe)`
    : "no Vulkan driver configured: run scripts/gpu/setup-lavapipe.sh and source .tools/lavapipe/env.sh, or pass --lavapipe";
  fail(`${main.reason}: ${main.error.trim()}\nwebgpu-check: ${hint}`, { ...report, hint });
}

if (!opts.json) {
  const d = Object.entries(main.diffs).map(([k, v]) => `${k} ${v.maxAbs.toExponential(2)}`).join(", ");
  const place = Object.entries(main.placement).map(([k, v]) => `${k}→${v.provider}`).join(", ");
  const t = main.timings;
  console.log(`webgpu-check: MatMul+Softmax ${opts.size}x${opts.size}: max |webgpu - cpu| ${d} (tolerance ${opts.tol})`);
  console.log(`webgpu-check: placement ${place || "(none recorded)"}`);
  console.log(`webgpu-check: session create ${t.createMs} ms, first run ${t.firstRunMs} ms${t.medianRunMs !== undefined ? `, median of ${opts.runs - 1} further runs ${t.medianRunMs} ms` : ""} (cpu EP: ${t.cpuMedianRunMs} ms)`);
}

let ok = main.ok;
if (!main.ok && !opts.json) {
  if (main.cpuNodes.length) console.error(`webgpu-check: FAIL: nodes not on WebGPU: ${main.cpuNodes.join(", ")}`);
  else console.error("webgpu-check: FAIL: WebGPU output differs from CPU");
}

if (opts.ops) {
  report.ops = {};
  const t0 = performance.now();
  for (const [label, spec] of opCases()) {
    let r;
    try {
      r = await runCase(spec);
    } catch (e) {
      r = { ok: false, stage: "build/cpu", error: e instanceof Error ? e.message : String(e) };
    }
    const status = r.error ? `FAIL(${r.stage})` : !r.ok ? "DIFFERS" : r.cpuNodes.length ? "CPU-FALLBACK" : r.unseenNodes.length ? "OK(optimised away?)" : "WEBGPU";
    report.ops[label] = { status, ...r };
    if (status.startsWith("FAIL") || status === "DIFFERS") ok = false;
    if (!opts.json) {
      const diff = r.diffs ? Object.values(r.diffs).map((d) => (d.mismatches ? `${d.mismatches} mismatches, max ${d.maxAbs}` : d.maxAbs.toExponential(1))).join("; ") : "";
      const where = r.placement ? Object.entries(r.placement).map(([k, v]) => `${k}:${v.provider}`).join(" ") : "";
      console.log(`  ${label.padEnd(22)} ${status.padEnd(14)} ${r.error ? r.error.split("\n")[0].slice(0, 300) : `diff ${diff}  [${where}]`}`);
    }
  }
  report.opsTotalMs = ms(performance.now() - t0);

  const c = await runCase(combinedSpec(), { runs: opts.runs });
  report.combined = c;
  if (c.error || !c.ok) ok = false;
  if (!opts.json) {
    if (c.error) console.log(`webgpu-check: combined graph FAIL(${c.stage}): ${c.error}`);
    else {
      const cpuNodes = c.cpuNodes.length ? c.cpuNodes.join(", ") : "none";
      const d = Object.entries(c.diffs).map(([k, v]) => `${k} ${v.mismatches ? `${v.mismatches} mismatches` : v.maxAbs.toExponential(2)}`).join(", ");
      console.log(`webgpu-check: combined training-like graph (${combinedSpec().nodes.length} nodes): ${c.ok ? "OK" : "DIFFERS"}; diff ${d}; nodes on CPU: ${cpuNodes}`);
      console.log(`webgpu-check: combined graph session create ${c.timings.createMs} ms, first run ${c.timings.firstRunMs} ms, median run ${c.timings.medianRunMs ?? "-"} ms (cpu EP: ${c.timings.cpuMedianRunMs} ms)`);
    }
  }
}

report.ok = ok;
if (opts.json) console.log(JSON.stringify(report, (k, v) => (typeof v === "bigint" ? String(v) : v === Infinity ? "Infinity" : v)));
else console.log(`webgpu-check: ${ok ? "OK" : "FAIL"}`);
process.exit(ok ? 0 : 1);
