import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type * as TfCore from "@tensorflow/tfjs-core";
import { cpuTf } from "../../helpers/tf";
import { repoRoot, tempDir } from "../../helpers/paths";
import { runOnSoftwareGpu, softwareGpuSkip } from "../../helpers/softwareGpu";
import { CONFIGS, FAMILIES, greedyParity, maxAbsDiff, randomSequences, randomWeights, relError } from "./engineFixtures";
import { tinyConfig, type ModelConfig } from "../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../src/core/model/weights";
import { loadCheckpoint, saveCheckpoint } from "../../../src/core/model/checkpoint";
import { encodeSequence } from "../../../src/core/model/promptFormat";
import { TfEngine } from "../../../src/core/engine/tf/tfEngine";
import { getTf } from "../../../src/core/engine/tf/tfBackend";
import { sftLoss, sequenceLogProbs, tokenLogProbs, dpoLoss } from "../../../src/core/engine/tf/tfLosses";
import { OrtEngine, type OrtEngineTuning } from "../../../src/core/engine/ort/runtime/ortEngine";
import { createEngine, type EngineChoice } from "../../../src/core/engine/auto/createEngine";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type TokenBatch } from "../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../src/core/train/batching";
import { Rng } from "../../../src/core/util/rng";
import { trainSft, trainDpo, referenceLogProbs, visitedRows } from "../../../src/core/train/trainer";
import { dpoMetricsHost } from "../../../src/core/engine/dpoLoss";
import { generateSyntheticTask } from "../../../src/core/data/synthetic";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { sampleRationales } from "../../../src/core/sample/sampler";
import { findAnnotations } from "../../../src/core/data/annotations";
import { evaluate, formatResult } from "../../../src/core/data/calculator";

// One conformance suite, run against every engine through the ComputeEngine interface: losses and gradients
// (SFT, DPO), AdamW steps, log-probabilities, greedy decoding with the KV cache, the weights' round trip through
// a checkpoint and into another engine, and the trainer and sampler on the synthetic task. The reference is
// TensorFlow.js on its plain cpu backend (float32 throughout, automatic gradients) and the host's DPO loss;
// each engine is held to gradients within a relative 1e-5 of the reference's, the same losses over optimiser
// steps, per-token log-probabilities within 1e-4 and identical greedy decodes. (The reference is also run
// against itself: that pins the interface path — accumulation, scaling, metrics — rather than the numbers.)
//
// The webgpu execution provider runs on a software GPU (Mesa's lavapipe, installed into .tools/lavapipe by
// scripts/gpu/setup-lavapipe.sh, as .ci/run does). The Vulkan loader reads its environment at process start, so
// that variant runs this file again in a child process started with it (STS_CONFORMANCE_ENGINE=webgpu).

interface EngineUnderTest {
  label: string;
  /** How the product creates it (createEngine): name and device are checked. */
  choice: EngineChoice;
  device: RegExp;
  /**
   * The same engine for training on the synthetic task (TensorFlow.js: the backend the product would choose);
   * none on the software GPU, where it takes minutes (the cpu provider runs the same graphs).
   */
  trainingChoice: EngineChoice | null;
  /** The engine on the given weights; ORT's tuning (weights embedded in the decoder or fed) where it has one. */
  create(c: ModelConfig, w: HostWeights, threads: number, tuning?: OrtEngineTuning): Promise<ComputeEngine>;
  /** Decoding variants to compare: ORT embeds small models' weights in its decoder and feeds larger ones'. */
  decodeTunings: Array<OrtEngineTuning | undefined>;
  gradients(e: ComputeEngine): Promise<Map<string, Float32Array>>;
  tokenLogProbs(e: ComputeEngine, batch: TokenBatch): Promise<Float32Array>;
  /** Whether a disposed decode session refuses further steps (TfEngine's merely drops its cache). */
  refusesDisposedSession: boolean;
  /**
   * Whether getWeights hands out copies. TfEngine's are the cpu backend's own arrays (tensor.data() does not
   * copy there): a caller must not write to them.
   */
  copiesWeights: boolean;
  /** Live TensorFlow.js tensors, where the engine holds any: checked flat across steps and sampling. */
  liveTensors?: () => number;
  /**
   * DPO on the synthetic task: micro-batch size, and how far step 1's margin may sit from 0. ORT takes its
   * references from the log-prob graph and the policy from the DPO graph (another batch layout), so step 1
   * starts at the reference up to float32 rounding rather than exactly.
   */
  dpo: { microBatchSize: number; firstMarginTolerance: number };
  /**
   * Whether the parity checks run on the model families (FAMILIES) as well as on the Llama fixtures: not for the
   * reference against itself, where they would pin nothing more (TfLlama is held to PyTorch per family in
   * test/core/model/families.test.ts).
   */
  families: boolean;
}

const byName = (grads: HostWeights | null): Map<string, Float32Array> => {
  assert.ok(grads, "no accumulated gradients");
  return new Map([...grads].map(([name, t]) => [name, t.data]));
};

const ort = (executionProvider: "cpu" | "webgpu"): EngineUnderTest => ({
  label: `onnxruntime (${executionProvider})`,
  choice: { engine: "onnxruntime", tfBackend: "cpu", executionProvider },
  device: new RegExp(`^${executionProvider} \\(\\d+ threads?\\)$`),
  trainingChoice: executionProvider === "cpu" ? { engine: "onnxruntime", tfBackend: "cpu", executionProvider, threads: 2 } : null,
  create: (c, w, threads, tuning) => Promise.resolve(new OrtEngine(c, w, { executionProvider, threads }, tuning)),
  decodeTunings: [undefined, { decodeEmbedLimitBytes: 0 }, { decodeWeights: "fed" }],
  refusesDisposedSession: true,
  copiesWeights: true,
  gradients: async (e) => byName(await (e as OrtEngine).accumulatedGradients()),
  tokenLogProbs: (e, batch) => (e as OrtEngine).tokenLogProbs(batch),
  dpo: { microBatchSize: 8, firstMarginTolerance: 1e-4 },
  families: true,
});

const tfjs: EngineUnderTest = {
  label: "tfjs (cpu)",
  choice: { engine: "tfjs", tfBackend: "cpu" },
  device: /^cpu \(plain JavaScript\)$/,
  trainingChoice: { engine: "tfjs", tfBackend: "auto" },
  create: async (c, w) => new TfEngine(await cpuTf(), c, w, "cpu"),
  decodeTunings: [undefined],
  refusesDisposedSession: false,
  copiesWeights: false,
  gradients: async (e) => byName(await (e as TfEngine).accumulatedGradients()),
  tokenLogProbs: (e, batch) => (e as TfEngine).tokenLogProbs(batch),
  liveTensors: () => getTf().memory().numTensors,
  dpo: { microBatchSize: 16, firstMarginTolerance: 0 },
  families: false,
};

const child = process.env["STS_CONFORMANCE_ENGINE"];
const GRAD_TOL = 1e-5;

type Tf = typeof TfCore;

function tfTensors(tf: Tf, b: TokenBatch) {
  return {
    inputs: tf.tensor2d(b.inputs, [b.batch, b.length], "int32"),
    targets: tf.tensor2d(b.targets, [b.batch, b.length], "int32"),
    mask: tf.tensor2d(b.mask, [b.batch, b.length], "float32"),
  };
}

/** TF.js autodiff of a loss of the reference model, gradients by Hugging Face name. */
function tfGrads(tf: Tf, engine: TfEngine, loss: () => TfCore.Scalar): { value: number; grads: Map<string, Float32Array> } {
  const { value, grads } = tf.variableGrads(loss, [...engine.model.params.values()]);
  const out = new Map<string, Float32Array>();
  for (const [name, v] of engine.model.params) out.set(name, grads[v.name]!.dataSync().slice() as Float32Array);
  const result = { value: value.dataSync()[0]!, grads: out };
  tf.dispose([value, ...Object.values(grads)]);
  return result;
}

function compareGrads(label: string, got: Map<string, Float32Array>, ref: Map<string, Float32Array>): number {
  assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort());
  let worst = 0;
  for (const [name, r] of ref) {
    const e = relError(got.get(name)!, r);
    assert.ok(e < GRAD_TOL, `${label} ${name}: relative error ${e.toExponential(2)} (‖g‖ = ${Math.hypot(...r).toExponential(2)})`);
    worst = Math.max(worst, e);
  }
  return worst;
}

function conformanceSuite(engine: EngineUnderTest): void {
  const at = engine.label;
  for (const [kind, c] of Object.entries(CONFIGS)) if (engine.families || !(kind in FAMILIES)) parityChecks(engine, kind, c);

  test(`${at}: weights go through a checkpoint into another engine and back with the same log-probabilities`, async (t) => {
    const tf = await cpuTf();
    const c = CONFIGS["tied"]!;
    const e = await createEngine(engine.choice, c, randomWeights(c, 17));
    assert.equal(e.name, engine.choice.engine);
    assert.match(e.device, engine.device);
    const batch = makeBatch(randomSequences(c, 4, 18), c.pad_token_id, 32);
    for (let i = 0; i < 2; i++) {
      await e.sftBackward(batch, 1);
      await e.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
    }
    // Through a Hugging Face folder: what a run saves between stages, and what another engine resumes from.
    const dir = tempDir(t);
    const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));
    saveCheckpoint(dir, { config: c, weights: await e.getWeights(), tokenizer });
    const loaded = loadCheckpoint(dir);
    assert.deepEqual(loaded.config, c);
    const te = new TfEngine(tf, loaded.config, loaded.weights, "cpu");
    const err = maxAbsDiff(await e.sequenceLogProbs(batch), await te.sequenceLogProbs(batch));
    assert.ok(err < 1e-4, `log-probs differ by ${err} after the switch`);
    // And back: the reference's weights into the engine replace its own.
    e.setWeights(randomWeights(c, 19));
    te.setWeights(randomWeights(c, 19));
    assert.ok(maxAbsDiff(await e.sequenceLogProbs(batch), await te.sequenceLogProbs(batch)) < 1e-4);
    if (engine.copiesWeights) {
      // getWeights hands out copies: changing them does not touch the engine.
      const copy = await e.getWeights();
      copy.get("model.norm.weight")!.data.fill(0);
      assert.notEqual((await e.getWeights()).get("model.norm.weight")!.data[0], 0);
    }
    te.dispose();
    e.dispose();
  });

  test(`${at}: a non-finite gradient stops the step without applying it`, async () => {
    const c = CONFIGS["untied"]!;
    const w = randomWeights(c, 23);
    w.get("model.layers.0.mlp.up_proj.weight")!.data[5] = Number.NaN;
    const e = await engine.create(c, w, 1);
    const before = await e.getWeights();
    const { loss } = await e.sftBackward(makeBatch(randomSequences(c, 2, 24), c.pad_token_id, 32), 1);
    assert.ok(Number.isNaN(loss));
    await assert.rejects(e.optimizerStep(1e-2, DEFAULT_OPTIMIZER), /gradient norm is NaN: the step was not applied/);
    const after = await e.getWeights();
    for (const [name, x] of before) assert.deepEqual(after.get(name)!.data, x.data, name);
    await assert.rejects(e.optimizerStep(1e-2, DEFAULT_OPTIMIZER), /without accumulated gradients/);
    e.dispose();
  });

  trainingChecks(engine);
}

function parityChecks(engine: EngineUnderTest, kind: string, c: ModelConfig): void {
  const at = `${engine.label} ${kind}`;

  test(`${at}: SFT loss and gradients match TF.js autodiff`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 1);
    const te = new TfEngine(tf, c, w, "cpu");
    const e = await engine.create(c, w, 1);
    const batch = makeBatch(randomSequences(c, 5, 2), c.pad_token_id, 32);
    const tt = tfTensors(tf, batch);
    const ref = tfGrads(tf, te, () => tf.mul(sftLoss(tf, te.model.forward(tt.inputs).logits, tt.targets, tt.mask), 0.7) as TfCore.Scalar);
    const { loss } = await e.sftBackward(batch, 0.7);
    assert.ok(Math.abs(loss - ref.value / 0.7) < 1e-5 * Math.abs(loss), `loss ${loss} vs ${ref.value / 0.7}`);
    const worst = compareGrads("sft", await engine.gradients(e), ref.grads);
    t.diagnostic(`max relative gradient error ${worst.toExponential(2)}; loss ${loss} vs ${ref.value / 0.7}`);
    tf.dispose(Object.values(tt));
    te.dispose();
    e.dispose();
  });

  test(`${at}: DPO loss, TRL metrics and gradients match TF.js autodiff (chosen and rejected of different lengths)`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 3);
    const te = new TfEngine(tf, c, w, "cpu");
    const e = await engine.create(c, w, 1);
    const chosen = makeBatch(randomSequences(c, 4, 4, 4, 12), c.pad_token_id, 32);
    const rejected = makeBatch(randomSequences(c, 4, 5, 10, 20), c.pad_token_id, 32);
    assert.notEqual(chosen.length, rejected.length);
    const rng = new Rng(6);
    const refC = Float32Array.from({ length: 4 }, () => -30 + 5 * rng.normal());
    const refR = Float32Array.from({ length: 4 }, () => -50 + 5 * rng.normal());
    const beta = 0.1;
    const ct = tfTensors(tf, chosen);
    const rt = tfTensors(tf, rejected);
    let pc: Float32Array | null = null;
    let pr: Float32Array | null = null;
    const ref = tfGrads(tf, te, () => {
      const lc = sequenceLogProbs(tf, te.model.forward(ct.inputs).logits, ct.targets, ct.mask);
      const lr = sequenceLogProbs(tf, te.model.forward(rt.inputs).logits, rt.targets, rt.mask);
      pc = lc.dataSync() as Float32Array;
      pr = lr.dataSync() as Float32Array;
      return tf.mul(dpoLoss(tf, lc, lr, tf.tensor1d(refC), tf.tensor1d(refR), beta).loss, 1.5) as TfCore.Scalar;
    });
    const want = dpoMetricsHost(pc!, pr!, refC, refR, beta);
    const got = await e.dpoBackward(chosen, rejected, refC, refR, beta, 1.5);
    for (const k of Object.keys(want) as Array<keyof typeof want>) {
      assert.ok(Math.abs(got[k] - want[k]) <= 1e-5 * Math.max(1, Math.abs(want[k])), `${k}: ${got[k]} vs ${want[k]}`);
    }
    assert.ok(Math.abs(ref.value / 1.5 - want.loss) < 1e-5);
    const worst = compareGrads("dpo", await engine.gradients(e), ref.grads);
    t.diagnostic(`max relative gradient error ${worst.toExponential(2)}; loss ${got.loss} vs ${want.loss}; accuracies ${got["rewards/accuracies"]}`);
    tf.dispose([...Object.values(ct), ...Object.values(rt)]);
    te.dispose();
    e.dispose();
  });

  test(`${at}: the same losses and gradient norms over AdamW steps with clipping and accumulation, SFT then DPO`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 7);
    const te = new TfEngine(tf, c, w, "cpu");
    const e = await engine.create(c, w, 2);
    const settings = { ...DEFAULT_OPTIMIZER, maxGradNorm: 0.5, weightDecay: 0.1 };
    let clipped = 0;
    let worstLoss = 0;
    let worstNorm = 0;
    for (let step = 0; step < 4; step++) {
      // Two micro-batches of different lengths per step, each weighted by its share as the trainer does.
      for (const [i, n] of [3, 2].entries()) {
        const batch = makeBatch(randomSequences(c, n, 10 * step + i), c.pad_token_id, 32);
        const a = await te.sftBackward(batch, n / 5);
        const b = await e.sftBackward(batch, n / 5);
        worstLoss = Math.max(worstLoss, Math.abs(a.loss - b.loss) / Math.abs(a.loss));
        assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(a.loss), `step ${step} loss ${b.loss} vs ${a.loss}`);
      }
      const a = await te.optimizerStep(5e-3, settings);
      const b = await e.optimizerStep(5e-3, settings);
      if (a.gradNorm > settings.maxGradNorm) clipped++;
      worstNorm = Math.max(worstNorm, Math.abs(a.gradNorm - b.gradNorm) / a.gradNorm);
      assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-5 * a.gradNorm, `step ${step} grad norm ${b.gradNorm} vs ${a.gradNorm}`);
    }
    assert.ok(clipped >= 2, "clipping was never exercised");
    // DPO continues from the SFT weights with its own optimiser state; references from the reference engine.
    te.resetOptimizer();
    e.resetOptimizer();
    const chosen = makeBatch(randomSequences(c, 4, 50), c.pad_token_id, 32);
    const rejected = makeBatch(randomSequences(c, 4, 51), c.pad_token_id, 32);
    const refC = await te.sequenceLogProbs(chosen);
    const refR = await te.sequenceLogProbs(rejected);
    const beta = 0.1;
    for (let step = 0; step < 3; step++) {
      const a = await te.dpoBackward(chosen, rejected, refC, refR, beta, 1);
      const b = await e.dpoBackward(chosen, rejected, refC, refR, beta, 1);
      // The DPO loss is a function of differences of sequence log-probabilities (~−70 here): float32 rounding
      // of those sums (~1e-6 relative, as in the log-prob test) enters the loss scaled by beta.
      const tol = 1e-5 * Math.max(1, a.loss) + beta * 4e-7 * (Math.abs(a["logps/chosen"]) + Math.abs(a["logps/rejected"]));
      worstLoss = Math.max(worstLoss, Math.abs(a.loss - b.loss) / a.loss);
      assert.ok(Math.abs(a.loss - b.loss) < tol, `DPO step ${step} loss ${b.loss} vs ${a.loss}`);
      assert.ok(Math.abs(a["rewards/margins"] - b["rewards/margins"]) < tol, `DPO step ${step} margins ${b["rewards/margins"]} vs ${a["rewards/margins"]}`);
      // Adam's early steps move each weight by about ±lr whatever its gradient's size, so an entry near zero
      // whose float32 sign differs between the engines moves apart by 2·lr; rates of 5e-3 and 1e-3 keep the two
      // trajectories within float32 noise for these 7 steps (at 3e-2 they drift apart by ~1e-4 in log-probs).
      const na = await te.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
      const nb = await e.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
      worstNorm = Math.max(worstNorm, Math.abs(na.gradNorm - nb.gradNorm) / na.gradNorm);
      assert.ok(Math.abs(na.gradNorm - nb.gradNorm) < 1e-5 * na.gradNorm, `DPO step ${step} grad norm ${nb.gradNorm} vs ${na.gradNorm}`);
    }
    // The weights themselves stay close after 7 Adam steps (per-tensor relative to the tensor's norm).
    const wa = await te.getWeights();
    const wb = await e.getWeights();
    let worstWeight = 0;
    // Adam's first steps move an entry by about ±lr whatever its gradient's size, so an entry whose gradient is
    // near zero parts by up to 2·lr between the engines. The plain Llama fixtures have none that matter; qwen3's
    // has a q_proj entry whose first gradient is 2e-7 against the tensor's ~1e-2 (the engines' 2e-8 apart), which
    // parts by 9e-5. Key biases (qwen2) have such gradients by construction: a key bias shifts a query's scores
    // almost alike (exactly so but for RoPE's rotation), which softmax ignores.
    const drift = kind in FAMILIES ? 3e-5 : 1e-5;
    for (const [name, x] of wa) {
      const e = relError(wb.get(name)!.data, x.data);
      if (name.endsWith("k_proj.bias")) assert.ok(e < 1e-3, `${name} drifted: ${e}`);
      else worstWeight = Math.max(worstWeight, e);
    }
    assert.ok(worstWeight < drift, `weights drifted: ${worstWeight}`);
    t.diagnostic(`max relative loss difference ${worstLoss.toExponential(2)}, grad norm ${worstNorm.toExponential(2)}, weights after 7 steps ${worstWeight.toExponential(2)}`);
    te.dispose();
    e.dispose();
  });

  test(`${at}: per-token and per-sequence log-probabilities match TF.js within 1e-4`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 11);
    const te = new TfEngine(tf, c, w, "cpu");
    const e = await engine.create(c, w, 1);
    const batch = makeBatch(randomSequences(c, 6, 12, 3, 40), c.pad_token_id, 48);
    const tt = tfTensors(tf, batch);
    const want = tf.tidy(() => tokenLogProbs(tf, te.model.forward(tt.inputs).logits, tt.targets).dataSync() as Float32Array);
    const got = await engine.tokenLogProbs(e, batch);
    const tokenErr = maxAbsDiff(got, want);
    assert.ok(tokenErr < 1e-4, `token log-probs differ by ${tokenErr}`);
    const seqErr = maxAbsDiff(await e.sequenceLogProbs(batch), await te.sequenceLogProbs(batch));
    assert.ok(seqErr < 1e-4, `sequence log-probs differ by ${seqErr}`);
    t.diagnostic(`max |Δ| token ${tokenErr.toExponential(2)}, sequence ${seqErr.toExponential(2)}`);
    tf.dispose(Object.values(tt));
    te.dispose();
    e.dispose();
  });

  test(`${at}: greedy decoding with left-padded prompts gives the same tokens and logits as TF.js`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 13);
    const te = new TfEngine(tf, c, w, "cpu");
    const e = await engine.create(c, w, 1);
    const prompts = [[1, 5, 6, 7, 8, 9, 10], [1, 9, 3], [1, 4], [1, 20, 21, 22, 23]];
    const { worst, tokens, disposed } = await greedyParity(te, e, prompts, 16);
    assert.ok(worst < 1e-4, `logits differ by ${worst}`);
    assert.ok(new Set(tokens.flat()).size > 3, "degenerate decode: the comparison would prove little");
    t.diagnostic(`max |Δ logit| over 16 steps ${worst.toExponential(2)}`);
    if (engine.refusesDisposedSession) await assert.rejects(disposed.step(tokens[0]!), /disposed/);
    te.dispose();
    e.dispose();
  });

  test(`${at}: greedy decoding across the KV cache's growth to max_position_embeddings matches TF.js${engine.decodeTunings.length > 1 ? ", weights embedded, in a file or fed" : ""}`, async (t) => {
    const tf = await cpuTf();
    const w = randomWeights(c, 29);
    const te = new TfEngine(tf, c, w, "cpu");
    // Prompts of 30, 3 and 29 tokens: the prompt pass fills 30 of the first bucket's 32 slots, decoding grows the
    // cache past 32 and ends at max_position_embeddings (64) with the last step.
    const rng = new Rng(30);
    const prompts = [30, 3, 29].map((n) => [1, ...Array.from({ length: n - 1 }, () => rng.int(3, c.vocab_size - 1))]);
    const steps = c.max_position_embeddings - 30 + 1;
    for (const tuning of engine.decodeTunings) {
      const how = tuning?.decodeWeights ?? (tuning?.decodeEmbedLimitBytes === 0 ? "file" : "embedded");
      const e = await engine.create(c, w, 1, tuning);
      const { worst, tokens } = await greedyParity(te, e, prompts, steps);
      assert.ok(worst < 1e-4, `logits differ by ${worst} (${how} weights)`);
      assert.ok(new Set(tokens.flat()).size > 3, "degenerate decode: the comparison would prove little");
      t.diagnostic(`${how} weights: max |Δ logit| over ${steps} steps ${worst.toExponential(2)}`);
      e.dispose();
    }
    te.dispose();
  });
}

// The trainer and the sampler on the synthetic task: the method's own loop, driven through each engine.
const problems = generateSyntheticTask({ seed: 21, count: 400, maxSteps: 2 });
const tokenizer = tokenizerFromFiles(trainBpe(problems.flatMap((p) => [p.question, p.rationale]), { vocabSize: 320 }));
const taskConfig = tinyConfig(tokenizer.vocabSize, { hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256 });

function trainingChecks(engine: EngineUnderTest): void {
  const at = engine.label;
  const config = taskConfig;
  const choice = engine.trainingChoice;
  if (!choice) return;

  test(`${at}: SFT on the synthetic task halves the loss; sampling completes every \`<<a op b=\` correctly; the trained model scores and decodes greedily as TF.js does`, async (t) => {
    const e = await createEngine(choice, config, initWeights(config, 5));
    const data = problems.map((p) => encodeSequence(tokenizer, p.question, p.rationale));
    const tensorsAt: number[] = [];
    const logs = await trainSft(e, data, { steps: 60, batchSize: 16, microBatchSize: 8, learningRate: 1e-2, warmupRatio: 0.1, maxLength: 200, seed: 1 }, {
      onStep: () => engine.liveTensors && tensorsAt.push(engine.liveTensors()),
    });
    const first = logs.slice(0, 3).reduce((a, l) => a + l.loss, 0) / 3;
    const last = logs.slice(-5).reduce((a, l) => a + l.loss, 0) / 5;
    assert.ok(last < first / 2, `loss fell from ${first.toFixed(3)} only to ${last.toFixed(3)}`);
    // Tensor count is flat after the first step (optimiser moments are created on step 1).
    if (engine.liveTensors) assert.equal(Math.max(...tensorsAt.slice(1)), Math.min(...tensorsAt.slice(1)), `tensors: ${tensorsAt.join(",")}`);

    const before = engine.liveTensors?.();
    const samples = await sampleRationales(e, tokenizer, problems.slice(0, 8).map((p) => p.question), { n: 2, temperature: 0.7, maxNewTokens: 80, calculator: true, seed: 3, batchSize: 16 });
    if (engine.liveTensors) assert.equal(engine.liveTensors(), before, "sampling leaked tensors");
    let calls = 0;
    const checkCalculator = (s: (typeof samples)[number][number]): void => {
      for (const call of s.calculatorCalls) {
        calls++;
        const r = evaluate(call.expression);
        assert.equal(call.forced, r.ok ? `${formatResult(r.value)}>>` : null);
      }
    };
    for (const s of samples.flat()) {
      checkCalculator(s);
      // Every annotation the model opened with a computable expression carries the calculator's result.
      for (const a of findAnnotations(s.text)) {
        const r = evaluate(a.expression);
        if (r.ok && s.calculatorCalls.some((c) => c.expression === a.expression)) assert.equal(a.written, formatResult(r.value), s.text);
      }
    }
    assert.ok(calls > 0, "the trained model never opened a calculation");

    // The trained (peaked) model against the reference: sequence log-probabilities and greedy decodes.
    const weights = await e.getWeights();
    const tf = await cpuTf();
    const reference = new TfEngine(tf, config, weights, "cpu");
    const batch = makeBatch(data.slice(0, 8), config.pad_token_id, 200);
    const got = await e.sequenceLogProbs(batch);
    const want = await reference.sequenceLogProbs(batch);
    const worst = maxAbsDiff(got, want);
    assert.ok(worst < 1e-4 * batch.length, `sequence log-probs differ by ${worst}`);
    const questions = problems.slice(0, 8).map((p) => p.question);
    const options = { n: 1, temperature: 0, maxNewTokens: 60, calculator: true, seed: 3, batchSize: 8 };
    const ours = await sampleRationales(e, tokenizer, questions, options);
    const theirs = await sampleRationales(reference, tokenizer, questions, options);
    assert.deepEqual(
      ours.map((s) => s[0]!.text),
      theirs.map((s) => s[0]!.text),
    );
    calls = 0;
    for (const s of ours.flat()) checkCalculator(s);
    assert.ok(calls > 0, "the trained model never opened a calculation");
    t.diagnostic(`SFT loss ${first.toFixed(3)} → ${last.toFixed(3)}; max |Δ seq log-prob| ${worst.toExponential(2)} over ${batch.length} positions; ${calls} calculator calls`);
    reference.dispose();
    e.dispose();
  });

  test(`${at}: DPO on a toy preference set raises reward accuracies and margins within a few dozen steps`, async () => {
    const e = await createEngine(choice, config, initWeights(config, 9));
    const pairs = problems.slice(0, 32).map((p) => ({
      chosen: encodeSequence(tokenizer, p.question, p.rationale),
      rejected: encodeSequence(tokenizer, p.question, p.rationale.replace(/#### (\d+)/, (_, n: string) => `#### ${Number(n) + 7}`)),
    }));
    const ref = await referenceLogProbs(e, pairs, 16, 200);
    const logs = await trainDpo(e, pairs, ref, 0.1, { steps: 30, batchSize: 16, microBatchSize: engine.dpo.microBatchSize, learningRate: 6e-3, warmupRatio: 0.1, maxLength: 200, seed: 2 });
    const early = logs[0]!.dpo!;
    const late = logs.slice(-5);
    const acc = late.reduce((a, l) => a + l.dpo!["rewards/accuracies"], 0) / late.length;
    const margin = late.reduce((a, l) => a + l.dpo!["rewards/margins"], 0) / late.length;
    assert.ok(Math.abs(early["rewards/margins"]) <= engine.dpo.firstMarginTolerance, `step 1 starts at the reference: margin ${early["rewards/margins"]}`);
    const mid = logs.slice(5, 10).reduce((a, l) => a + l.dpo!["rewards/margins"], 0) / 5;
    assert.ok(acc >= 0.75, `reward accuracy ${acc}`);
    assert.ok(margin > mid, `margin did not keep rising: ${mid} → ${margin}`);
    assert.ok(margin > 0.1, `margin ${margin}`);
    assert.ok(late.at(-1)!.loss < logs[0]!.loss - 0.05, `loss ${logs[0]!.loss} → ${late.at(-1)!.loss}`);
    e.dispose();
  });

  test(`${at}: DPO with fewer steps than pairs computes the reference for the pairs its steps draw, and those equal the full pass's`, async () => {
    const e = await createEngine(choice, config, initWeights(config, 9));
    const pairs = problems.slice(0, 40).map((p, i) => ({
      chosen: encodeSequence(tokenizer, p.question, p.rationale),
      // Rejected sides of differing lengths, so the sorted reference batches mix pairs.
      rejected: encodeSequence(tokenizer, p.question, p.rationale.slice(0, 20 + ((i * 37) % 60))),
    }));
    const s = { steps: 2, batchSize: 6, microBatchSize: 3, learningRate: 1e-4, warmupRatio: 0, maxLength: 200, seed: 5 };
    const rows = visitedRows(pairs.length, s);
    assert.ok(rows.length > 0 && rows.length <= 12, `${rows.length} rows`);
    const all = await referenceLogProbs(e, pairs, 16, 200);
    const progress: number[] = [];
    const some = await referenceLogProbs(e, pairs, s.microBatchSize, 200, undefined, rows, (done) => progress.push(done));
    assert.equal(progress.at(-1), rows.length);
    for (let i = 0; i < pairs.length; i++) {
      if (rows.includes(i)) {
        assert.ok(Math.abs(some.chosen[i]! - all.chosen[i]!) < 1e-3 && Math.abs(some.rejected[i]! - all.rejected[i]!) < 1e-3, `pair ${i}: ${some.chosen[i]}/${some.rejected[i]} against ${all.chosen[i]}/${all.rejected[i]}`);
      } else {
        assert.ok(Number.isNaN(some.chosen[i]!) && Number.isNaN(some.rejected[i]!), `pair ${i} was not drawn but has a reference value`);
      }
    }
    // Training draws only those rows: a NaN reference would stop it with "DPO loss is NaN".
    const logs = await trainDpo(e, pairs, some, 0.1, s);
    assert.ok(logs.every((l) => Number.isFinite(l.loss)), `losses ${logs.map((l) => l.loss).join(", ")}`);
    // Every pair once the steps cover an epoch.
    assert.deepEqual(visitedRows(pairs.length, { ...s, steps: 7 }), [...pairs.keys()]);
    e.dispose();
  });
}

// Registered last: the suites read the task data above.
if (child === "webgpu") {
  conformanceSuite(ort("webgpu"));
} else {
  conformanceSuite(tfjs);
  conformanceSuite(ort("cpu"));
  test("onnxruntime (webgpu) on a software GPU: the whole suite, in a process started with the GPU's environment", { skip: softwareGpuSkip, timeout: 600_000 }, (t) => {
    const r = runOnSoftwareGpu(join(repoRoot, "test", "core", "engine", "conformance.test.ts"), { STS_CONFORMANCE_ENGINE: "webgpu" }, { timeoutMs: 590_000 });
    assert.equal(r.status, 0, `the webgpu suite failed:\n${r.stdout}\n${r.stderr}`);
    t.diagnostic(r.stdout.split("\n").filter((l) => /^\s*(ℹ|✔)/.test(l)).join("\n"));
  });
}

test("engine.name auto with a GPU provider that cannot start stops, saying why, instead of training on another engine", async (t) => {
  const c = CONFIGS["tied"]!;
  // onnxruntime-node's CUDA provider files are not installed here (.npmrc); where they are, there is nothing to refuse.
  let started: ComputeEngine | null = null;
  try {
    started = await createEngine({ engine: "onnxruntime", tfBackend: "auto", executionProvider: "cuda", threads: 1 }, c, randomWeights(c, 1));
    await started.sftBackward(makeBatch(randomSequences(c, 2, 3), c.pad_token_id, 16), 1);
  } catch {
    started?.dispose();
    started = null;
  }
  if (started) {
    started.dispose();
    t.skip("ONNX Runtime's CUDA provider runs on this machine");
    return;
  }
  await assert.rejects(
    createEngine({ engine: "auto", tfBackend: "auto", executionProvider: "cuda", threads: 1 }, c, randomWeights(c, 1)),
    /engine\.executionProvider "cuda" could not start, so engine\.name "auto" does not fall back from it: engine\.executionProvider "cuda": ONNX Runtime's CUDA provider did not load/,
  );
});
