/**
 * What a saved checkpoint folder gets beside its safetensors for other tools, whatever engine trained it: the ONNX
 * inference model (the decoding graph with its KV cache, weights inside or beside). The selftrain layer reaches the
 * ONNX engine's graphs through here, not into ort/ directly.
 */
import type { ModelConfig } from "../model/config";
import type { HostWeights } from "../model/weights";
import { writeInferenceModel } from "./ort/llama/inferenceModel";

/** Writes `dir`/model.onnx (and model.onnx.data above 1 GiB of weights); returns the files written. */
export function writeOnnxModel(dir: string, config: ModelConfig, weights: HostWeights): Promise<string[]> {
  return writeInferenceModel(dir, config, weights);
}
