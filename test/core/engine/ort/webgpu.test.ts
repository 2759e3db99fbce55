import { test } from "node:test";
import assert from "node:assert/strict";

// The webgpu provider's parity with the reference runs in ../conformance.test.ts, on a software GPU where one is
// installed. Here: what a machine without a GPU adapter is told.
test("without a GPU adapter, the webgpu provider fails with a sentence that says what to do", async (t) => {
  const { OrtEngine } = await import("../../../../src/core/engine/ort/runtime/ortEngine");
  const { tinyConfig } = await import("../../../../src/core/model/config");
  const { initWeights } = await import("../../../../src/core/model/weights");
  const config = tinyConfig(20, { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32 });
  const engine = new OrtEngine(config, initWeights(config, 1, 0.1), { executionProvider: "webgpu", threads: 1 });
  try {
    await engine.sequenceLogProbs({ batch: 1, length: 4, inputs: new Int32Array([1, 3, 4, 5]), targets: new Int32Array([3, 4, 5, 2]), mask: new Float32Array([0, 1, 1, 1]), tokens: 3, truncated: 0 });
    t.skip("this process has a WebGPU adapter (a real GPU, or the software GPU's environment)");
  } catch (e) {
    assert.match((e as Error).message, /^engine\.executionProvider "webgpu": no WebGPU adapter on this machine .* Set it to "cpu"/);
  } finally {
    engine.dispose();
  }
});
