import { initTfBackend, getTf, type TfBackendName } from "./tfBackend";
import { TfEngine } from "./tfEngine";
import { OrtEngine } from "./ortEngine";
import type { ComputeEngine } from "./computeEngine";
import type { ModelConfig } from "../model/config";
import type { HostWeights } from "../model/weights";

export interface EngineChoice {
  engine: "auto" | "tfjs" | "onnxruntime";
  tfBackend: "auto" | TfBackendName;
}

/**
 * The compute engine for a model: "onnxruntime" (ONNX Runtime graphs on the CPU) or TensorFlow.js. "auto" is
 * still TensorFlow.js until a probe picks the faster engine per machine.
 */
export async function createEngine(choice: EngineChoice, config: ModelConfig, weights: HostWeights): Promise<ComputeEngine> {
  if (choice.engine === "onnxruntime") return new OrtEngine(config, weights);
  const backend = await initTfBackend(choice.tfBackend === "auto" ? {} : { force: choice.tfBackend });
  return new TfEngine(getTf(), config, weights, backend.detail);
}
