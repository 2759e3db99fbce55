/**
 * Chooses the TensorFlow.js backend for the worker process and hands out the `tf` namespace it lives in.
 * Automatic order: @tensorflow/tfjs-node-gpu → @tensorflow/tfjs-node → WebAssembly → plain JavaScript cpu;
 * "webgpu" only when forced. The native packages carry their own tfjs; all copies share the engine and kernel
 * registries kept on globalThis, but callers should still take `tf` from getTf() to match the backend.
 */
// tfjs-core's Node build registers neither gradients nor chained ops (x.reshape…). The union package does so
// through these two ESM modules, which tsx and esbuild both load; the union itself would also pull in webgl,
// layers, converter and data.
import "@tensorflow/tfjs-core/dist/register_all_gradients";
import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
import type * as TfCore from "@tensorflow/tfjs-core";
import type { DataId, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type * as WasmBackend from "@tensorflow/tfjs-backend-wasm";
import type { TransferListItem, WorkerOptions } from "node:worker_threads";
import { dirname, sep } from "node:path";
import { availableParallelism } from "node:os";

export type TfBackendName = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu" | "webgpu";
export type Tf = typeof TfCore;

export interface BackendChoice {
  name: TfBackendName;
  /** tf.getBackend() once initialised. */
  tfBackend: string;
  /** What runs and how, e.g. "wasm (SIMD, 2 threads)", plus why preferred backends were skipped. */
  detail: string;
  tried: Array<{ name: TfBackendName; error: string }>;
}

export interface TfBackendOptions {
  force?: TfBackendName;
  /** WebAssembly threads (1–8); default half the logical cores, as upstream. Fixed once wasm has started. */
  threads?: number;
}

const DEPS_HINT = "reinstall the project's dependencies";
const WEBGPU_HINT = "install webgpu and @tensorflow/tfjs-backend-webgpu to use the webgpu backend";
// Required at run time, not bundled: the wasm and webgpu backends stay external and require tfjs-core from
// node_modules, so they register into this very module instance rather than into a bundled twin.
const tfCore = guardedRequire("@tensorflow/tfjs-core", DEPS_HINT) as Tf;
guardedRequire("@tensorflow/tfjs-backend-cpu", DEPS_HINT);

let active: { key: string; choice: BackendChoice; tf: Tf } | null = null;
let queue: Promise<unknown> = Promise.resolve();
let wasmDetail: string | null = null;

/** The tf namespace that the chosen backend is registered with. */
export function getTf(): Tf {
  if (!active) throw new Error("getTf(): call initTfBackend() first");
  return active.tf;
}

/** Loads and selects a backend; repeated calls with the same options return the same choice. */
export function initTfBackend(options: TfBackendOptions = {}): Promise<BackendChoice> {
  // One call at a time: overlapping setBackend() calls would race on the shared engine.
  const next = queue.then(() => choose(options));
  queue = next.catch(() => undefined);
  return next;
}

async function choose(options: TfBackendOptions): Promise<BackendChoice> {
  const key = `${options.force ?? "auto"}/${options.threads ?? ""}`;
  if (active?.key === key && active.tf.getBackend() === active.choice.tfBackend) return active.choice;
  const tried: BackendChoice["tried"] = [];
  for (const name of options.force ? [options.force] : (["tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const)) {
    try {
      const { tf, detail } = await LOADERS[name](options);
      const skipped = tried.map((t) => `${t.name}: ${t.error.split(/ — |\n/)[0]}`).join("; ");
      const choice = { name, tfBackend: tf.getBackend(), detail: skipped ? `${detail} (skipped ${skipped})` : detail, tried };
      active = { key, choice, tf };
      return choice;
    } catch (e) {
      tried.push({ name, error: errorText(e) });
    }
  }
  const why = tried.map((t) => `${t.name}: ${t.error}`).join("; ");
  throw new Error(options.force ? `Cannot use the "${options.force}" backend: ${why}` : `No TensorFlow.js backend could start: ${why}`);
}

const LOADERS: Record<TfBackendName, (o: TfBackendOptions) => Promise<{ tf: Tf; detail: string }>> = {
  "tensorflow-gpu": () => loadNative("@tensorflow/tfjs-node-gpu"),
  tensorflow: () => loadNative("@tensorflow/tfjs-node"),
  wasm: (o) => loadWasm(o.threads),
  cpu: () => select(tfCore, "cpu").then(() => ({ tf: tfCore, detail: "cpu (plain JavaScript)" })),
  webgpu: async () => {
    const gpu = guardedRequire("webgpu", WEBGPU_HINT) as { create(flags: string[]): unknown; globals: object };
    if (!tfCore.findBackendFactory("webgpu")) {
      Object.assign(globalThis, gpu.globals);
      // defineProperty, not assignment: Node 21+ defines navigator as a getter.
      Object.defineProperty(globalThis, "navigator", { value: { gpu: gpu.create([]) }, configurable: true, writable: true });
      guardedRequire("@tensorflow/tfjs-backend-webgpu", WEBGPU_HINT);
    }
    await select(tfCore, "webgpu");
    return { tf: tfCore, detail: "webgpu (Dawn, through the webgpu package)" };
  },
};

async function loadNative(pkg: string): Promise<{ tf: Tf; detail: string }> {
  const tf = guardedRequire(pkg, "installing it downloads libtensorflow") as Tf;
  await select(tf, "tensorflow");
  return { tf, detail: `tensorflow (${pkg} ${tf.version_core})` };
}

async function loadWasm(threads: number | undefined): Promise<{ tf: Tf; detail: string }> {
  const wasm = guardedRequire("@tensorflow/tfjs-backend-wasm", DEPS_HINT) as typeof WasmBackend;
  const started = wasmDetail;
  if (started !== null) return select(tfCore, "wasm").then(() => ({ tf: tfCore, detail: started }));
  // The .wasm files sit beside the package's main file, which resolves from source and from the bundle
  // alike (the package is external there).
  wasm.setWasmPaths(dirname(require.resolve("@tensorflow/tfjs-backend-wasm")) + sep);
  const env = tfCore.env();
  const simd = (await env.getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
  // Half the logical cores is upstream's default: XNNPACK gains little from hyper-threads, and on a busy
  // machine (measured here) extra threads only add contention.
  const want = Math.min(8, Math.max(1, Math.floor(threads ?? availableParallelism() / 2)));
  let threaded = false;
  if (want > 1 && simd) {
    // tfjs switches threads off under Node (tfjs issue #3830); the shims make the threaded build start.
    env.set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    wasm.setThreadsCount(want);
    threaded = await withThreadShims(want, () => tfCore.setBackend("wasm")).catch(() => false);
  }
  if (!threaded) {
    env.set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    wasm.setThreadsCount(1);
  }
  await select(tfCore, "wasm");
  patchWasmMatMul(tfCore);
  const n = wasm.getThreadsCount();
  const note = want > 1 && !threaded ? (simd ? "; the threaded build failed to start" : "; threads need SIMD") : "";
  wasmDetail = `wasm (${simd ? "SIMD" : "no SIMD"}, ${n} thread${n === 1 ? "" : "s"}${note})`;
  return { tf: tfCore, detail: wasmDetail };
}

/** require() with a variable id: esbuild then neither bundles nor fails on optional packages. */
function guardedRequire(pkg: string, hint: string): unknown {
  try {
    return require(pkg);
  } catch (e) {
    // A dependency missing inside an installed package is MODULE_NOT_FOUND too; only our own id means absent.
    const absent = (e as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" && errorText(e).includes(`'${pkg}'`);
    throw new Error(`${pkg} ${absent ? "is not installed" : `failed to load: ${errorText(e)}`} — ${hint}`);
  }
}

async function select(tf: Tf, backend: string): Promise<void> {
  // A failed initialisation surfaces from setBackend() only as a console warning and `false`.
  if (!(await tf.setBackend(backend))) throw new Error(`the "${backend}" backend failed to initialise (see the warning above)`);
  await tf.ready();
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The threaded wasm build does not start under Node as shipped: Emscripten gives worker_threads a blob: URL
 * (Node takes only paths or code), posts the main script as a Blob the worker cannot read synchronously, that
 * script uses the require$$N bindings of tfjs's rollup bundle, and the pool is capped at os.cpus().length / 2.
 * While the backend starts, we record Blob texts, start workers from code with the script inlined, and report
 * enough CPUs for the requested count.
 */
async function withThreadShims(threads: number, start: () => Promise<boolean>): Promise<boolean> {
  const os = require("node:os") as typeof import("node:os");
  const wt = require("node:worker_threads") as { Worker: typeof import("node:worker_threads").Worker };
  const saved = { Blob: globalThis.Blob, createObjectURL: URL.createObjectURL, Worker: wt.Worker, cpus: os.cpus };
  const texts = new WeakMap<Blob, string>();
  const byUrl = new Map<string, string>();
  const prelude = 'var require$$0=require("fs"),require$$1=require("path"),require$$3=require("perf_hooks"),require$$4=require("os"),commonjsGlobal=globalThis;';
  let mainScript = "";
  globalThis.Blob = class extends saved.Blob {
    constructor(...[parts, options]: ConstructorParameters<typeof Blob>) {
      super(parts, options);
      const text = parts?.every((p) => typeof p === "string") ? parts.join("") : undefined;
      if (text !== undefined) texts.set(this, text);
      if (text?.startsWith("var WasmBackendModuleThreadedSimd")) mainScript = prelude + text;
    }
  };
  URL.createObjectURL = (blob: Blob) => {
    const url = saved.createObjectURL.call(URL, blob);
    const text = texts.get(blob);
    if (text !== undefined) byUrl.set(url, text);
    return url;
  };
  // Emscripten keeps this class as globalThis.Worker, so it stays in use after wt.Worker is restored.
  wt.Worker = class extends saved.Worker {
    constructor(url: string | URL, options?: WorkerOptions) {
      const code = typeof url === "string" ? byUrl.get(url) : undefined;
      if (code === undefined || !mainScript) super(url, options);
      else super(`${code};importScripts=function(){(0,eval)(${JSON.stringify(mainScript)})};`, { ...options, eval: true });
    }
    // Emscripten refs a worker while its thread runs and XNNPACK's pool threads never finish, so Node would
    // never exit by itself; the main thread drives all work, so the workers need not hold the process.
    override ref(): void {}
    override postMessage(message: unknown, transfer?: readonly TransferListItem[]): void {
      const m = message as { cmd?: string } | null;
      // The worker gets the script through importScripts above; a Blob would be unreadable there.
      super.postMessage(m?.cmd === "load" ? { ...m, urlOrBlob: "main" } : message, transfer);
    }
  };
  os.cpus = () => {
    const cpus = saved.cpus.call(os);
    while (cpus.length > 0 && cpus.length < 2 * threads) cpus.push(cpus[0] as (typeof cpus)[number]);
    return cpus;
  };
  try {
    return await start();
  } finally {
    globalThis.Blob = saved.Blob;
    URL.createObjectURL = saved.createObjectURL;
    wt.Worker = saved.Worker;
    os.cpus = saved.cpus;
  }
}

const PATCHED = Symbol.for("selfTrainingStudio.wasmMatMulPatch");

/**
 * The wasm matMul kernels give XNNPACK only products with no transpose and batch 1 on both sides; the rest
 * runs a naive blocked loop (tfjs-backend-wasm batch_mat_mul_impl.cc), and backward passes are exactly the
 * transposed products. When b has batch 1 we transpose explicitly (wasm Transpose kernel), fold a's batch
 * into its rows and call the original kernel untransposed. With batch on both sides the loop runs whatever
 * we do, and transposes cost it nothing measurable, so those calls pass through.
 * Measured (2-vCPU Xeon, Node 20.20, wasm SIMD, 1 thread, best of 8), ms per call, before → after:
 *   [1024,128]·[128,512]           nn 5.1 → 5.1   nT 53 → 5.8   Tn 80 → 5.4   TT 62 → 5.9
 *   same, fused bias + relu        nn 5.3 → 5.2   nT 66 → 5.6   Tn 97 → 5.4   TT 77 → 6.0
 *   [16,64,128]·[128,512]          nn 61 → 5.1    nT 57 → 5.5   Tn 62 → 5.2   TT 57 → 5.0
 *   [8,4,128,64]·[8,4,64,128]      29–30 → 29–30 for all four (both sides batched)
 * Upstream the fused kernel also misreads a rank-1 bias: XNNPACK reads [cols], the loop [rows·cols] clamped
 * to its last element, so a one-element bias, or a per-column bias on a batched b, gave wrong values. We
 * tile the bias to the width the chosen path reads.
 */
export function patchWasmMatMul(tf: Tf): void {
  const transpose = tf.getKernel("Transpose", "wasm")?.kernelFunc;
  const tile = tf.getKernel("Tile", "wasm")?.kernelFunc;
  for (const kernelName of ["BatchMatMul", "_FusedMatMul"]) {
    const original = tf.getKernel(kernelName, "wasm");
    if (!transpose || !tile || !original || PATCHED in original.kernelFunc) continue;
    const kernelFunc: KernelFunc = (args) => {
      const { a, b, bias } = args.inputs;
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32") return original.kernelFunc(args);
      const [ra, rb] = [a.shape.length, b.shape.length];
      const rows = a.shape[transposeA ? ra - 1 : ra - 2] ?? 0;
      const inner = a.shape[transposeA ? ra - 2 : ra - 1] ?? 0;
      const cols = b.shape[transposeB ? rb - 2 : rb - 1] ?? 0;
      const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
      const viaXnn = tf.util.sizeFromShape(b.shape.slice(0, -2)) === 1;
      const reshape = viaXnn && (transposeA || transposeB || batchA > 1);
      const biasWidth = bias?.shape.length === 1 ? (bias.shape[0] ?? 0) : 0;
      const biasNeed = viaXnn ? cols : rows * cols;
      const widen = biasWidth > 0 && biasWidth !== biasNeed && biasNeed % biasWidth === 0 && (viaXnn || biasWidth > 1);
      if (!reshape && !widen) return original.kernelFunc(args);
      const temps: TensorInfo[] = [];
      const run = (kernel: KernelFunc, x: TensorInfo, attrs: Record<string, number[]>): TensorInfo => {
        temps.push(kernel({ inputs: { x }, backend: args.backend, attrs }) as TensorInfo);
        return temps[temps.length - 1] as TensorInfo;
      };
      const swapLast = (x: TensorInfo): TensorInfo => {
        const r = x.shape.length;
        return run(transpose, x, { perm: [...Array(r - 2).keys(), r - 1, r - 2] });
      };
      try {
        const inputs = { ...args.inputs };
        if (bias && widen) inputs["bias"] = run(tile, bias, { reps: [biasNeed / biasWidth] });
        if (!reshape) return original.kernelFunc({ ...args, inputs });
        // The same buffers seen as batch-1 3-D tensors: row-major [..., rows, inner] is [batch·rows, inner].
        inputs["a"] = { ...(transposeA ? swapLast(a) : a), shape: [1, batchA * rows, inner] };
        inputs["b"] = { ...(transposeB ? swapLast(b) : b), shape: [1, inner, cols] };
        const attrs = { ...args.attrs, transposeA: false, transposeB: false };
        const out = original.kernelFunc({ ...args, inputs, attrs }) as TensorInfo;
        const batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
        out.shape = [...batch, rows, cols];
        return out;
      } finally {
        const backend = args.backend as { disposeData(dataId: DataId): boolean };
        for (const t of temps) backend.disposeData(t.dataId);
      }
    };
    Object.defineProperty(kernelFunc, PATCHED, { value: true });
    tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ ...original, kernelFunc });
  }
}
