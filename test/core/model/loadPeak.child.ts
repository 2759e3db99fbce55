/**
 * Run by loadMemory.test.ts in its own process: loads a model folder's weights and prints the resident-memory
 * peak of the load, measured from the kernel (/proc/self/status VmHWM after a reset through clear_refs).
 * argv: <folder> <"stream" | "whole">; "whole" reads every weight file into memory first, as loading used to.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { validateConfig } from "../../../src/core/model/config";
import { loadFolderWeights, readWeightLayout } from "../../../src/core/model/modelFolder";
import { readSafetensors, toFloat32 } from "../../../src/core/model/safetensors";

const [dir, mode] = process.argv.slice(2) as [string, string];
const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
const config = validateConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
const layout = readWeightLayout(dir); // warms the module code paths; headers only
(globalThis as { gc?: () => void }).gc?.();
writeFileSync("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
const before = kb("VmRSS");
let f32Bytes = 0;
if (mode === "stream") {
  for (const w of loadFolderWeights(dir, config).weights.values()) f32Bytes += w.data.byteLength;
} else {
  const files = layout.files.map((f) => readSafetensors(f.path));
  const weights = files.flatMap((f) => [...f.tensors.values()].map((t) => toFloat32(t)));
  for (const w of weights) f32Bytes += w.byteLength;
}
console.log(JSON.stringify({ before, peak: kb("VmHWM"), f32Bytes }));
