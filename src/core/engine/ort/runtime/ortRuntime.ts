/**
 * Loading onnxruntime-node and opening sessions on our graphs. The package is required at run time (esbuild
 * leaves it external: it carries native binaries per platform), and only when an ORT engine is created, so
 * the TensorFlow.js engine never pays for loading it.
 */
import type * as OrtTypes from "onnxruntime-node";
import { availableParallelism } from "node:os";

export type Ort = typeof OrtTypes;
export type OrtSession = OrtTypes.InferenceSession;
export type OrtTensor = OrtTypes.Tensor;
/** A run's inputs by graph input name. */
export type OrtFeeds = Record<string, OrtTensor>;
/** A run's outputs by graph output name, read as data and dims. */
export type OrtOutputs = Record<string, { data: unknown; dims: readonly number[] }>;

let ort: Ort | null = null;

export function loadOrt(): Ort {
  if (ort) return ort;
  try {
    ort = require("onnxruntime-node") as Ort;
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    throw new Error(`onnxruntime-node failed to load: ${text} — reinstall the project's dependencies`);
  }
  return ort;
}

export interface SessionSettings {
  /** Intra-op threads; default: the machine's logical cores. */
  threads?: number;
  /** Execution provider; "cpu" unless the user chose another that this build bundles. */
  executionProvider?: "cpu" | "webgpu" | "cuda";
  /** false: idle threads never spin (see createSession); default true where it pays. */
  spin?: boolean;
}

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** How one session is opened, beyond the engine's SessionSettings. */
export interface SessionChoices {
  /**
   * Whether the session's idle intra-op threads spin before they sleep (default true, where SessionSettings.spin
   * allows). Each session has its own pool and the engine alternates sessions: a pool still spinning steals the
   * cores the next session needs (measured on 2 cores: a 2-thread SFT step went from ~45 ms to 80–170 ms).
   * Spinning pays inside long chains of small kernels (backward: ~45 vs ~55 ms on a quiet machine), so the engine
   * lets those sessions spin and never the state graphs', whose few large kernels run between them. Under heavy
   * load from other processes spinning costs more than it saves: SessionSettings.spin turns it off everywhere.
   */
  spin?: boolean;
  /** Where each output is left, by name (the rest on the CPU): "gpu-buffer" keeps it on the WebGPU device (runtime/modelState.ts). */
  outputLocations?: Record<string, "cpu" | "gpu-buffer">;
  /**
   * ONNX Runtime's memory pattern (default on): after a run it plans all of a shape's intermediate values into one
   * block. For the training graphs at 135M parameters that block (2.3 GB) went into an arena region rounded up to
   * the next power of two: peak RSS 5.27 GiB against 3.20 GiB without the pattern, and the second step was slower
   * (23.9 s against 19.9 s on one thread) while the new block was touched for the first time. Steady steps took
   * the same time either way.
   */
  memoryPattern?: boolean;
  /**
   * false: on webgpu, refuse to open the session if any of its nodes would run on ONNX Runtime's CPU provider
   * (the session option disable_cpu_ep_fallback), so that a graph whose op the WebGPU provider lacks fails at once
   * instead of copying tensors to the host and back at every run. Only for graphs of fixed shapes (the state
   * graphs): ORT also refuses the int64 shape arithmetic it runs on the CPU by design (Concat, Mul and Add of
   * symbolic dimensions, which the WebGPU provider has no kernels for), so the training, scoring and decoding
   * graphs cannot have it; placement.test.ts checks theirs. Ignored on other providers.
   */
  cpuFallback?: false;
  /**
   * ONNX Runtime's verbose log for this session, on the process's stderr, each line tagged with `id`: among it,
   * the provider of every node ("Node placements"), which placement.test.ts reads.
   */
  verboseLog?: { id: string };
}

/** Empties a cache of sessions and releases each once it has opened (one that failed to open has nothing to release). */
export function releaseSessions<K>(sessions: Map<K, Promise<OrtSession>>): void {
  const all = [...sessions.values()];
  sessions.clear();
  for (const s of all) void s.then((x) => x.release()).catch(() => undefined);
}

export async function createSession(model: Uint8Array | string, settings: SessionSettings = {}, choices: SessionChoices = {}): Promise<OrtSession> {
  const o = loadOrt();
  const provider = settings.executionProvider ?? "cpu";
  try {
    return await openSession(o, model, settings, choices);
  } catch (e) {
    throw new Error(providerProblem(provider, e instanceof Error ? e.message : String(e)));
  }
}

/** ORT's own message names a source line deep inside the runtime; the user needs what to do about it. */
export function providerProblem(provider: string, message: string): string {
  if (provider === "webgpu" && /WebGPU adapter|No supported adapters/i.test(message)) {
    return 'engine.executionProvider "webgpu": no WebGPU adapter on this machine (no GPU driver with Vulkan, Metal or Direct3D 12 was found). Set it to "cpu", or install the GPU\'s driver; the README says how CI runs it on a software GPU.';
  }
  if (provider === "cuda" && /cuda|providers_shared|libcudart|libcublas|cudnn/i.test(message)) {
    return `engine.executionProvider "cuda": ONNX Runtime's CUDA provider did not load (${message.split("\n")[0]}). It needs CUDA 12 and cuDNN 9 and the provider files, which npm does not install by default: see the README ("GPUs"). Or set it to "webgpu" or "cpu".`;
  }
  if (/fallback to CPU EP has been explicitly disabled/i.test(message)) {
    return `ONNX Runtime (${provider}): a node of this graph has no kernel on the ${provider} provider and would run on the CPU, which this session refuses (SessionChoices.cpuFallback). This is a bug in the graph: placement.test.ts names such nodes.`;
  }
  return `ONNX Runtime (${provider}): ${message.split("\n")[0]}`;
}

async function openSession(o: Ort, model: Uint8Array | string, settings: SessionSettings, choices: SessionChoices): Promise<OrtSession> {
  const provider = settings.executionProvider ?? "cpu";
  const options: OrtTypes.InferenceSession.SessionOptions = {
    ...(choices.outputLocations ? { preferredOutputLocation: choices.outputLocations } : {}),
    ...(choices.memoryPattern === false ? { enableMemPattern: false } : {}),
    ...(choices.verboseLog ? { logId: choices.verboseLog.id, logSeverityLevel: 0, logVerbosityLevel: 0 } : {}),
    executionProviders: [provider],
    graphOptimizationLevel: "all",
    intraOpNumThreads: settings.threads ?? defaultThreads(),
    // One op at a time: our graphs are long chains, and a second pool would compete for the same cores.
    executionMode: "sequential",
    extra: {
      session: {
        intra_op: { allow_spinning: choices.spin !== false && settings.spin !== false ? "1" : "0" },
        ...(choices.cpuFallback === false && provider === "webgpu" ? { disable_cpu_ep_fallback: "1" } : {}),
      },
    },
  };
  return typeof model === "string" ? o.InferenceSession.create(model, options) : o.InferenceSession.create(model, options);
}
