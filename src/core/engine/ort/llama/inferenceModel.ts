/**
 * The inference model each checkpoint folder gets, for other ONNX tools: the decoding graph with the weights
 * inside (or beside, above 1 GiB), the conventional past/present KV cache.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { ModelConfig } from "../../../model/config";
import type { HostWeights } from "../../../model/weights";
import { writeFileAtomic } from "../../../store/atomic";
import { decodeGraph } from "./llamaGraphs";
import { writeModelFiles } from "../onnx/onnxFiles";

/**
 * The decoding graph with the weights embedded: a standalone ONNX model (inputs input_ids, positions,
 * attn_bias, past_key.<l> / past_value.<l>; outputs logits and present_key.<l> / present_value.<l>) that runs in
 * any ONNX Runtime. Protobuf caps a model at 2 GB: writeInferenceModel puts larger weights beside it.
 */
export function exportInferenceModel(c: ModelConfig, weights: HostWeights): Uint8Array {
  return decodeGraph(c, { weights }).toBytes("self-training-studio");
}

/** Weights above this many bytes go to model.onnx.data beside model.onnx (protobuf caps one message at 2 GB). */
export const INLINE_EXPORT_LIMIT_BYTES = 1024 ** 3;

/**
 * exportInferenceModel's model written into `dir` as model.onnx, with the weights inside up to
 * INLINE_EXPORT_LIMIT_BYTES and in model.onnx.data (ONNX external data, which ONNX tools load from beside the
 * model) above. Returns the files written.
 */
export async function writeInferenceModel(dir: string, c: ModelConfig, weights: HostWeights, inlineLimitBytes = INLINE_EXPORT_LIMIT_BYTES): Promise<string[]> {
  const bytes = [...weights.values()].reduce((n, w) => n + w.data.length * 4, 0);
  const data = join(dir, "model.onnx.data");
  if (bytes <= inlineLimitBytes) {
    rmSync(data, { force: true });
    await writeFileAtomic(join(dir, "model.onnx"), exportInferenceModel(c, weights));
    return ["model.onnx"];
  }
  writeModelFiles(decodeGraph(c, { weights }), dir, { model: "model.onnx", weights: "model.onnx.data" });
  return ["model.onnx", "model.onnx.data"];
}
