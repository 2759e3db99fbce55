/**
 * A graph written as two files: the model, and its large initializers as ONNX external data in a weights file
 * beside it. For models past protobuf's 2 GB limit on one message (decoding's weights above 512 MB, a
 * checkpoint's inference model above 1 GiB).
 */
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { GraphRecorder } from "./graphRecorder";
import { encodeModel, type TensorProtoJson } from "./onnxProto";

/** External data offsets are multiples of this (the page size and Windows' allocation granularity both divide it). */
const PAGE = 65536;

/**
 * `graph` as two files in `dir` (model.onnx and weights.bin unless named): the graph, and every initializer of at
 * least `minBytes` at page-aligned offsets of the weights file (which ONNX Runtime can map rather than read).
 * Returns the model file's path.
 */
export function writeModelFiles(graph: GraphRecorder, dir: string, names: { model: string; weights: string } = { model: "model.onnx", weights: "weights.bin" }, minBytes = 4096): string {
  const model = graph.toModel();
  const file = names.weights;
  const fd = openSync(join(dir, file), "w");
  let offset = 0;
  const initializer: TensorProtoJson[] = [];
  try {
    for (const t of model.graph.initializer) {
      const raw = t.raw_data;
      if (!raw || raw.byteLength < minBytes) {
        initializer.push(t);
        continue;
      }
      offset = Math.ceil(offset / PAGE) * PAGE;
      for (let done = 0; done < raw.byteLength; ) done += writeSync(fd, raw, done, raw.byteLength - done, offset + done);
      const { raw_data: _, ...rest } = t;
      initializer.push({
        ...rest,
        data_location: 1,
        external_data: [
          { key: "location", value: file },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(raw.byteLength) },
        ],
      });
      offset += raw.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  const path = join(dir, names.model);
  writeFileSync(path, encodeModel({ ...model, graph: { ...model.graph, initializer } }));
  return path;
}
