import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuTf } from "../../../helpers/tf";
import { tinyConfig, validateConfig, toHfConfig, type ModelConfig } from "../../../../src/core/model/config";
import { parameterCount } from "../../../../src/core/model/architecture";
import { initWeights, type HostWeights } from "../../../../src/core/model/weights";
import { OrtEngine } from "../../../../src/core/engine/ort/runtime/ortEngine";
import type { ComputeEngine } from "../../../../src/core/engine/computeEngine";
import { FAMILIES, MICRO_FAMILIES, randomWeights } from "../engineFixtures";
import { TfEngine } from "../../../../src/core/engine/tf/tfEngine";
import { TfLlama } from "../../../../src/core/engine/tf/tfLlama";
import { makeBatch } from "../../../../src/core/train/batching";
import { sftLoss } from "../../../../src/core/engine/tf/tfLosses";

const micro = tinyConfig(23, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32, tie_word_embeddings: false });

// The KV cache against the full forward pass, for plain Llama and for each family (TfLlama's cache, and
// OrtEngine's fixed-capacity decode graph with weights embedded and fed): prompts of different lengths
// left-padded, then one token at a time.
const decodeCases: Array<[string, ModelConfig, HostWeights]> = [["llama", micro, initWeights(micro, 1, 0.3)], ...Object.entries(FAMILIES).map(([name, c]): [string, ModelConfig, HostWeights] => [name, c, randomWeights(c, 1)])];
for (const [label, c, weights] of decodeCases) {
  test(`incremental decoding with the KV cache gives the same logits as a full forward pass, with left padding: ${label} (TF.js and ONNX Runtime)`, async () => {
    const tf = await cpuTf();
    const tfEngine = new TfEngine(tf, c, weights, "cpu");
    const engines: Array<[string, ComputeEngine]> = [["tfjs", tfEngine]];
    if (label !== "llama") engines.push(["ort embedded", new OrtEngine(c, weights, { threads: 1 })], ["ort file", new OrtEngine(c, weights, { threads: 1 }, { decodeEmbedLimitBytes: 0 })], ["ort fed", new OrtEngine(c, weights, { threads: 1 }, { decodeWeights: "fed" })]);
    const prompts = [[1, 5, 6, 7, 8], [1, 9, 3]];
    const cont = [[4, 11, 12], [13, 14, 15]];
    const V = c.vocab_size;
    const refs = prompts.map((p, b) => {
      const full = [...p, ...cont[b]!];
      return tf.tidy(() => tfEngine.model.forward(tf.tensor2d([full], [1, full.length], "int32")).logits.arraySync() as number[][][]);
    });
    for (const [name, engine] of engines) {
      const { session, logits: first } = await engine.startDecoding(prompts);
      const stepLogits = [first];
      for (let s = 0; s < 3; s++) stepLogits.push(await session.step(cont.map((x) => x[s]!)));
      session.dispose();
      for (const [b, p] of prompts.entries()) {
        for (let s = 0; s <= 3; s++) {
          const got = stepLogits[s]!.subarray(b * V, (b + 1) * V);
          const want = refs[b]![0]![p.length - 1 + s]!;
          for (let i = 0; i < V; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `${name}: row ${b} step ${s} logit ${i}: ${got[i]} vs ${want[i]}`);
        }
      }
      engine.dispose();
    }
  });
}

// Float32 central differences of TF.js's loss: plain Llama, and each family's own parameters (biases, q/k norms).
const gradCases: Array<[string, ModelConfig, HostWeights, string[]]> = [
  ["llama", micro, initWeights(micro, 2, 0.3), ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight", "lm_head.weight"]],
  ["llama3", MICRO_FAMILIES["llama3"]!, randomWeights(MICRO_FAMILIES["llama3"]!, 2), ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "lm_head.weight"]],
  ["qwen2", MICRO_FAMILIES["qwen2"]!, randomWeights(MICRO_FAMILIES["qwen2"]!, 2), ["model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias", "model.layers.0.self_attn.v_proj.bias", "model.layers.1.self_attn.q_proj.weight", "model.embed_tokens.weight"]],
  ["qwen3", MICRO_FAMILIES["qwen3"]!, randomWeights(MICRO_FAMILIES["qwen3"]!, 2), ["model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight", "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias", "model.layers.0.self_attn.o_proj.bias", "model.layers.1.self_attn.o_proj.weight", "model.layers.0.self_attn.q_proj.weight"]],
];
for (const [label, c, weights, names] of gradCases) {
  test(`model gradients match finite differences (float32 central differences on a tiny config): ${label}`, async () => {
    const tf = await cpuTf();
    const model = new TfLlama(tf, c, weights);
    const batch = makeBatch([{ ids: [1, 4, 5, 6, 7, 2], promptLength: 2 }, { ids: [1, 8, 9, 2], promptLength: 1 }], 0, 16);
    const inputs = tf.tensor2d(batch.inputs, [batch.batch, batch.length], "int32");
    const targets = tf.tensor2d(batch.targets, [batch.batch, batch.length], "int32");
    const mask = tf.tensor2d(batch.mask, [batch.batch, batch.length]);
    const lossOf = (): number => tf.tidy(() => sftLoss(tf, model.forward(inputs).logits, targets, mask).dataSync()[0]!);
    const { grads } = tf.variableGrads(() => sftLoss(tf, model.forward(inputs).logits, targets, mask) as never, [...model.params.values()]);
    const h = 1e-2;
    let checked = 0;
    for (const name of names) {
      const v = model.params.get(name)!;
      const g = grads[v.name]!.dataSync();
      const base = v.dataSync().slice();
      // The largest few gradient entries: float32 finite differences resolve them well.
      const idx = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 3);
      for (const i of idx) {
        const at = (delta: number): number => {
          const w = base.slice();
          w[i] = w[i]! + delta;
          v.assign(tf.tensor(w, v.shape));
          return lossOf();
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        v.assign(tf.tensor(base, v.shape));
        const rel = Math.abs(fd - g[i]!) / Math.max(1e-3, Math.abs(fd) + Math.abs(g[i]!));
        assert.ok(rel < 2e-2, `${label} ${name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`);
        checked++;
      }
    }
    assert.equal(checked, names.length * 3);
    // An embedding row that appears in no input gets no gradient: the one-hot gradient is exact (untied: a tied
    // head's gradient reaches every row).
    const gEmb = grads[model.params.get("model.embed_tokens.weight")!.name]!.arraySync() as number[][];
    if (!c.tie_word_embeddings) assert.ok(gEmb[c.vocab_size - 1]!.every((x) => x === 0));
    tf.dispose(Object.values(grads));
    model.dispose();
  });
}

test("config: HF names round-trip, bad fields are named", () => {
  const c = tinyConfig(512);
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(toHfConfig(c)))), c);
  assert.ok(parameterCount(c) > 500_000 && parameterCount(c) < 1_000_000, String(parameterCount(c)));
  assert.throws(() => validateConfig({ ...toHfConfig(c), hidden_size: "big" }), /"hidden_size" must be an integer/);
  assert.throws(() => validateConfig({ ...toHfConfig(c), num_key_value_heads: 3 }), /not a multiple of num_key_value_heads/);
  assert.throws(() => validateConfig({ ...toHfConfig(c), model_type: "gpt2" }), /model_type "gpt2" is not supported/);
});
