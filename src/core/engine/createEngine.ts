import { initTfBackend, getTf, type TfBackendName } from "./tfBackend";
import { TfEngine } from "./tfEngine";
import type { ComputeEngine } from "./computeEngine";
import type { ModelConfig } from "../model/config";
import type { HostWeights } from "../model/weights";

export interface EngineChoice {
  engine: "auto" | "tfjs" | "onnxruntime";
  tfBackend: "auto" | TfBackendName;
}

/**
 * The compute engine for a model. TensorFlow.js is the only engine so far; "onnxruntime" is refused with a
 * clear reason rather than silently replaced.
 */
export async function createEngine(choice: EngineChoice, config: ModelConfig, weights: HostWeights): Promise<ComputeEngine> {
  if (choice.engine === "onnxruntime") throw new Error('engine.name "onnxruntime" is not available yet: use "tfjs" or "auto"');
  const backend = await initTfBackend(choice.tfBackend === "auto" ? {} : { force: choice.tfBackend });
  return new TfEngine(getTf(), config, weights, backend.detail);
}
