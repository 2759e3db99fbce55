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
import { buildModel } from "./onnxBytes.mjs";
import { matmulSoftmaxSpec, opCases, combinedSpec } from "./webgpuCases.mjs";

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
