import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../../helpers/paths";

// The GPU code path, proven on a software GPU: Mesa's lavapipe (Vulkan on the CPU) from bookworm-backports,
// installed into .tools/lavapipe by scripts/gpu/setup-lavapipe.sh (.ci/run does). A training step and greedy
// sampling on the "webgpu" execution provider must match "cpu". A user's real GPU runs the same graphs.
const envFile = join(repoRoot, ".tools", "lavapipe", "env.sh");
const skip = existsSync(envFile) ? false : "no software GPU: run scripts/gpu/setup-lavapipe.sh (Debian bookworm) to test the webgpu provider";

test("webgpu execution provider on a software GPU: training steps and greedy decoding match the cpu provider", { skip, timeout: 240_000 }, (t) => {
  const child = join(repoRoot, "test", "core", "engine", "ort", "webgpuParity.child.ts");
  const r = spawnSync("bash", ["-c", `. "${envFile}" && exec "${process.execPath}" --import tsx "${child}"`], { cwd: repoRoot, encoding: "utf8", timeout: 230_000 });
  assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  const { cpu, webgpu } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<"cpu" | "webgpu", { losses: number[]; gradNorms: number[]; logProbs: number[]; tokens: number[][]; ms: number }>;
  const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
  const worst = (a: number[], b: number[]): number => Math.max(...a.map((x, i) => rel(x, b[i]!)));
  t.diagnostic(`webgpu vs cpu: losses ${worst(webgpu.losses, cpu.losses).toExponential(1)}, grad norms ${worst(webgpu.gradNorms, cpu.gradNorms).toExponential(1)}, log-probs ${worst(webgpu.logProbs, cpu.logProbs).toExponential(1)} (relative); ${(webgpu.ms / 1000).toFixed(1)} s on the software GPU, ${(cpu.ms / 1000).toFixed(1)} s on cpu`);
  assert.ok(cpu.losses[1]! < cpu.losses[0]!, "the loss falls on cpu");
  assert.ok(worst(webgpu.losses, cpu.losses) < 1e-4, `losses ${webgpu.losses} vs ${cpu.losses}`);
  assert.ok(worst(webgpu.gradNorms, cpu.gradNorms) < 1e-4, `grad norms ${webgpu.gradNorms} vs ${cpu.gradNorms}`);
  assert.ok(worst(webgpu.logProbs, cpu.logProbs) < 1e-4, `log-probs ${webgpu.logProbs} vs ${cpu.logProbs}`);
  assert.deepEqual(webgpu.tokens, cpu.tokens, "greedy decodes differ");
});

test("without a GPU adapter, the webgpu provider fails with a sentence that says what to do", async (t) => {
  const { OrtEngine } = await import("../../../../src/core/engine/ort/ortEngine");
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
