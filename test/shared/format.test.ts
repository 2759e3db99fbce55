// The engine as the dashboard names it (issue 28): "cpu (2 threads)" inside the engine's parenthesis read
// "onnxruntime (cpu (2 threads))"; one parenthesis, as docs/ux.md shows: "onnxruntime (cpu, 2 threads)".
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatEngine } from "../../src/shared/format";

test("formatEngine: the device's details join the engine's one parenthesis", () => {
  assert.equal(formatEngine("onnxruntime", "cpu (2 threads)"), "onnxruntime (cpu, 2 threads)");
  assert.equal(formatEngine("onnxruntime", "webgpu (1 thread)"), "onnxruntime (webgpu, 1 thread)");
  assert.equal(formatEngine("tfjs", "wasm (SIMD, 2 threads)"), "tfjs (wasm, SIMD, 2 threads)");
  assert.equal(formatEngine("tfjs", "cpu"), "tfjs (cpu)");
  assert.equal(formatEngine("onnxruntime", null), "onnxruntime");
  // Brackets stay balanced whatever the device says; a detail's own brackets are kept.
  assert.equal(formatEngine("e", "cuda (device 0 (A100))"), "e (cuda, device 0 (A100))");
});
