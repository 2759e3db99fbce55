import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuTf } from "../../../helpers/tf";
import { tinyConfig, validateConfig, toHfConfig } from "../../../../src/core/model/config";
import { parameterCount } from "../../../../src/core/model/architecture";
import { initWeights } from "../../../../src/core/model/weights";
import { TfEngine } from "../../../../src/core/engine/tf/tfEngine";
import { TfLlama } from "../../../../src/core/engine/tf/tfLlama";
import { makeBatch } from "../../../../src/core/train/batching";
import { sftLoss } from "../../../../src/core/engine/tf/tfLosses";

const micro = tinyConfig(23, { hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32, tie_word_embeddings: false });

test("incremental decoding with the KV cache gives the same logits as a full forward pass, with left padding", async () => {
  const tf = await cpuTf();
  const engine = new TfEngine(tf, micro, initWeights(micro, 1, 0.3), "cpu");
  const prompts = [[1, 5, 6, 7, 8], [1, 9, 3]];
  const cont = [[4, 11, 12], [13, 14, 15]];
  const { session, logits: first } = await engine.startDecoding(prompts);
  const stepLogits = [first];
  for (let s = 0; s < 3; s++) stepLogits.push(await session.step(cont.map((c) => c[s]!)));
  session.dispose();
  const V = micro.vocab_size;
  for (const [b, p] of prompts.entries()) {
    const full = [...p, ...cont[b]!];
    const ref = tf.tidy(() => engine.model.forward(tf.tensor2d([full], [1, full.length], "int32")).logits.arraySync() as number[][][]);
    for (let s = 0; s <= 3; s++) {
      const got = stepLogits[s]!.subarray(b * V, (b + 1) * V);
      const want = ref[0]![p.length - 1 + s]!;
      for (let i = 0; i < V; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `row ${b} step ${s} logit ${i}: ${got[i]} vs ${want[i]}`);
    }
  }
  engine.dispose();
});

test("model gradients match finite differences (float64 central differences on a tiny config)", async () => {
  const tf = await cpuTf();
  const weights = initWeights(micro, 2, 0.3);
  const model = new TfLlama(tf, micro, weights);
  const batch = makeBatch([{ ids: [1, 4, 5, 6, 7, 2], promptLength: 2 }, { ids: [1, 8, 9, 2], promptLength: 1 }], 0, 16);
  const inputs = tf.tensor2d(batch.inputs, [batch.batch, batch.length], "int32");
  const targets = tf.tensor2d(batch.targets, [batch.batch, batch.length], "int32");
  const mask = tf.tensor2d(batch.mask, [batch.batch, batch.length]);
  const lossOf = (): number => tf.tidy(() => sftLoss(tf, model.forward(inputs).logits, targets, mask).dataSync()[0]!);
  const { grads } = tf.variableGrads(() => sftLoss(tf, model.forward(inputs).logits, targets, mask) as never, [...model.params.values()]);
  const names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight", "lm_head.weight"];
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
      assert.ok(rel < 2e-2, `${name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`);
      checked++;
    }
  }
  assert.equal(checked, names.length * 3);
  // An embedding row that appears in no input gets no gradient: the one-hot gradient is exact.
  const gEmb = grads[model.params.get("model.embed_tokens.weight")!.name]!.arraySync() as number[][];
  assert.ok(gEmb[20]!.every((x) => x === 0));
  tf.dispose(Object.values(grads));
  model.dispose();
});

test("config: HF names round-trip, bad fields are named", () => {
  const c = tinyConfig(512);
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(toHfConfig(c)))), c);
  assert.ok(parameterCount(c) > 500_000 && parameterCount(c) < 1_000_000, String(parameterCount(c)));
  assert.throws(() => validateConfig({ ...toHfConfig(c), hidden_size: "big" }), /"hidden_size" must be an integer/);
  assert.throws(() => validateConfig({ ...toHfConfig(c), num_key_value_heads: 3 }), /not a multiple of num_key_value_heads/);
  assert.throws(() => validateConfig({ ...toHfConfig(c), model_type: "gpt2" }), /model_type "gpt2" is not supported/);
});
