import { initTfBackend, getTf, type TfBackendName } from "../tf/tfBackend";
import { TfEngine } from "../tf/tfEngine";
import { OrtEngine } from "../ort/runtime/ortEngine";
import type { ComputeEngine, TokenBatch } from "../computeEngine";
import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import { loadOrt, type SessionSettings } from "../ort/runtime/ortRuntime";

export interface EngineChoice {
  engine: "auto" | "tfjs" | "onnxruntime";
  tfBackend: "auto" | TfBackendName;
  executionProvider?: "cpu" | "webgpu" | "cuda";
  /** ONNX Runtime threads; 0 or absent: one per core. */
  threads?: number;
}

/** What "auto" chose and why, in one line for the log and the metrics. */
export interface EnginePick {
  engine: "tfjs" | "onnxruntime";
  reason: string;
  /** Set when "auto" took this engine because the other could not start: why. Said in the log and every metric. */
  fallback?: string;
}

/** Probe results by model shape and choice: a process probes once, not once per stage. */
const picks = new Map<string, Promise<EnginePick>>();

/**
 * The compute engine for a model. "onnxruntime" and "tfjs" are taken as asked; "auto" times one SFT step of
 * each available engine on this model (a few hundred milliseconds, once per process and model shape) and
 * takes the faster, so a machine with CUDA TensorFlow.js and no ONNX Runtime GPU gets TensorFlow.js while a
 * CPU-only machine gets ONNX Runtime.
 *
 * `handOver`: the caller gives the weight arrays to the engine and never reads them again, so ONNX Runtime's engine
 * takes them instead of copying (OrtEngineTuning.adoptWeights): one copy of the model in memory, not two. The
 * probe's engines always copy.
 */
export async function createEngine(choice: EngineChoice, config: ModelConfig, weights: HostWeights, onPick?: (pick: EnginePick) => void, handOver = false): Promise<ComputeEngine> {
  let engine = choice.engine;
  if (engine === "auto") {
    const key = JSON.stringify([config, choice]);
    let pick = picks.get(key);
    if (!pick) {
      pick = probe(choice, config, weights);
      picks.set(key, pick);
      pick.catch(() => picks.delete(key));
    }
    const chosen = await pick;
    onPick?.(chosen);
    engine = chosen.engine;
  }
  return engine === "onnxruntime" ? ortEngine(choice, config, weights, handOver) : tfEngine(choice, config, weights);
}

function ortEngine(choice: EngineChoice, config: ModelConfig, weights: HostWeights, adoptWeights = false): OrtEngine {
  const settings: SessionSettings = { executionProvider: choice.executionProvider ?? "cpu" };
  if (choice.threads) settings.threads = choice.threads;
  return new OrtEngine(config, weights, settings, adoptWeights ? { adoptWeights } : {});
}

async function tfEngine(choice: EngineChoice, config: ModelConfig, weights: HostWeights): Promise<TfEngine> {
  const backend = await initTfBackend(choice.tfBackend === "auto" ? {} : { force: choice.tfBackend });
  return new TfEngine(getTf(), config, weights, backend.detail);
}

/** A fixed training batch shaped like the method's: 8 rows of 64 tokens, the second half of each a completion. */
function probeBatch(config: ModelConfig): TokenBatch {
  const B = 8, T = Math.min(64, config.max_position_embeddings - 1);
  const inputs = new Int32Array(B * T), targets = new Int32Array(B * T), mask = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    inputs[i] = (i * 7919) % config.vocab_size;
    targets[i] = (i * 104729 + 1) % config.vocab_size;
    mask[i] = i % T >= T / 2 ? 1 : 0;
  }
  return { batch: B, length: T, inputs, targets, mask, tokens: (B * T) / 2, truncated: 0 };
}

/** Milliseconds of the faster of two SFT backward passes after one untimed warm-up (graph build, kernels). */
async function timeStep(engine: ComputeEngine, batch: TokenBatch): Promise<number> {
  try {
    await engine.sftBackward(batch, 1);
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await engine.sftBackward(batch, 1);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  } finally {
    engine.dispose();
  }
}

async function probe(choice: EngineChoice, config: ModelConfig, weights: HostWeights): Promise<EnginePick> {
  const batch = probeBatch(config);
  let ortMs: number;
  try {
    loadOrt();
    ortMs = await timeStep(ortEngine(choice, config, weights), batch);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    // A GPU provider is only ever named on purpose (the default is "cpu"): a run on TensorFlow.js instead is not
    // what was asked for, so it stops, saying why.
    const provider = choice.executionProvider ?? "cpu";
    if (provider !== "cpu") throw new Error(`engine.executionProvider "${provider}" could not start, so engine.name "auto" does not fall back from it: ${why}`);
    const fallback = `ONNX Runtime could not start (${why})`;
    return { engine: "tfjs", reason: `auto: TensorFlow.js, because ${fallback}`, fallback };
  }
  // TensorFlow.js on WebAssembly or plain JS is an order of magnitude slower than ORT on the same CPU (bench:train);
  // only a native backend can compete, so only then is the probe worth its seconds.
  const backend = await initTfBackend(choice.tfBackend === "auto" ? {} : { force: choice.tfBackend });
  if (backend.name !== "tensorflow-gpu" && backend.name !== "tensorflow" && backend.name !== "webgpu") {
    return { engine: "onnxruntime", reason: `auto: ONNX Runtime (${ortMs.toFixed(0)} ms per probe step; TensorFlow.js has only its ${backend.name} backend here)` };
  }
  const tfMs = await timeStep(await tfEngine(choice, config, weights), batch);
  const engine = tfMs < ortMs ? "tfjs" : "onnxruntime";
  return { engine, reason: `auto: ${engine === "tfjs" ? "TensorFlow.js" : "ONNX Runtime"} (probe step: ONNX Runtime ${ortMs.toFixed(0)} ms, TensorFlow.js ${backend.name} ${tfMs.toFixed(0)} ms)` };
}
