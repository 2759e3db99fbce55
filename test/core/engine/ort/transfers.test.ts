// What a training step moves between the host and the execution provider (issue 15 item 1): the batch and a
// few scalars, the same for a model of 13k parameters as for one of 180k; and a decoding step its tokens in and
// its logits out, its KV cache staying on the device. OrtEngine.transfers counts it from the tensors' own
// locations (modelState.ts meteredRun), so a state tensor that left the device would show.
// STS_TRANSFER_PROVIDER=webgpu runs the checks on the webgpu provider; the test at the end starts a child so on
// Mesa's software GPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { runOnSoftwareGpu, softwareGpuSkip } from "../../../helpers/softwareGpu";
import { OrtEngine, WEBGPU_BUFFER_LIMIT_BYTES } from "../../../../src/core/engine/ort/runtime/ortEngine";
import { meteredRun, slotsOf, splitSlots, type TransferCounts } from "../../../../src/core/engine/ort/runtime/modelState";
import { loadOrt, type OrtSession } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { DEFAULT_OPTIMIZER, type TokenBatch } from "../../../../src/core/engine/computeEngine";
import { parameterCount, parameterShapes } from "../../../../src/core/model/architecture";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { initWeights } from "../../../../src/core/model/weights";
import { makeBatch } from "../../../../src/core/train/batching";
import { Rng } from "../../../../src/core/util/rng";
import { FAMILIES, randomWeights } from "../engineFixtures";

const provider = process.env["STS_TRANSFER_PROVIDER"] === "webgpu" ? "webgpu" : "cpu";
const onDevice = provider !== "cpu";

const small = tinyConfig(64, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
const large = tinyConfig(256, { hidden_size: 64, intermediate_size: 192, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });

function batchOf(rows: number, seed: number): TokenBatch {
  const rng = new Rng(seed);
  const seqs = Array.from({ length: rows }, () => ({ ids: Array.from({ length: 10 + Math.floor(rng.next() * 8) }, () => 3 + Math.floor(rng.next() * 60)), promptLength: 4 }));
  return makeBatch(seqs, 0, 32);
}

const delta = (after: TransferCounts, before: TransferCounts): TransferCounts => ({
  toDevice: after.toDevice - before.toDevice,
  toHost: after.toHost - before.toHost,
  withinHost: after.withinHost - before.withinHost,
});

/** A step of two SFT micro-batches and an optimizer step, counted after two warm-up steps. */
async function sftStepMoves(c: ModelConfig): Promise<{ moved: TransferCounts; batchBytes: number; readBack: TransferCounts }> {
  const e = new OrtEngine(c, initWeights(c, 3), { executionProvider: provider, threads: 1 });
  try {
    const batches = [batchOf(4, 1), batchOf(4, 2)];
    const step = async (): Promise<void> => {
      for (const b of batches) await e.sftBackward(b, 0.5);
      await e.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
    };
    await step();
    await step();
    const before = { ...e.transfers };
    await step();
    const moved = delta(e.transfers, before);
    const batchBytes = batches.reduce((n, b) => n + b.inputs.byteLength + b.targets.byteLength + b.mask.byteLength, 0);
    const beforeRead = { ...e.transfers };
    await e.getWeights();
    return { moved, batchBytes, readBack: delta(e.transfers, beforeRead) };
  } finally {
    e.dispose();
  }
}

test(`an SFT step moves its batch and a constant, whatever the model's size (${provider})`, async () => {
  const results = [];
  for (const c of [small, large]) {
    const r = await sftStepMoves(c);
    const P = parameterCount(c);
    // Per micro-batch: the batch, the scale (4 bytes) and, on a device, the accumulate flag (1 byte); the loss back.
    // The optimizer step: on a device its ten float32 scalars (max_grad_norm among them) in, the norm back; on
    // the CPU it runs on the host arrays and moves nothing.
    const expectedIn = r.batchBytes + 2 * 4 + (onDevice ? 2 * 1 + 10 * 4 : 0);
    const expectedOut = 2 * 4 + (onDevice ? 4 : 0);
    assert.equal(r.moved.toDevice, expectedIn, `${P} parameters: bytes to the device`);
    assert.equal(r.moved.toHost, expectedOut, `${P} parameters: bytes read back`);
    // The CPU provider's one copy: onnxruntime-node hands each gradient output over in a new buffer.
    assert.equal(r.moved.withinHost, onDevice ? 0 : 2 * P * 4, `${P} parameters: gradient copies on the host`);
    // Weights come back when asked for: all of them, once.
    assert.deepEqual(r.readBack, onDevice ? { toDevice: 0, toHost: P * 4, withinHost: 0 } : { toDevice: 0, toHost: 0, withinHost: 0 });
    results.push({ P, ...r.moved });
  }
  assert.ok(results[1]!.P > 10 * results[0]!.P, "the second model is over ten times larger");
  assert.equal(results[0]!.toDevice + results[0]!.toHost, results[1]!.toDevice + results[1]!.toHost);
});

test(`a DPO step and scoring move their inputs and results only (${provider})`, async () => {
  for (const c of [small, large]) {
    const e = new OrtEngine(c, initWeights(c, 4), { executionProvider: provider, threads: 1 });
    try {
      const chosen = batchOf(3, 5);
      const rejected = batchOf(3, 6);
      const ref = Float32Array.of(-20, -21, -22);
      await e.dpoBackward(chosen, rejected, ref, ref, 0.1, 1);
      await e.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
      let before = { ...e.transfers };
      await e.dpoBackward(chosen, rejected, ref, ref, 0.1, 1);
      const L = Math.max(chosen.length, rejected.length);
      const stacked = 6 * L * 4 * 3;
      assert.equal(e.transfers.toDevice - before.toDevice, stacked + 2 * 3 * 4 + 2 * 4 + (onDevice ? 1 : 0));
      assert.equal(e.transfers.toHost - before.toHost, 7 * 4, "the loss and six metrics");
      before = { ...e.transfers };
      await e.sequenceLogProbs(chosen);
      const bytes = chosen.inputs.byteLength * 3;
      assert.equal(e.transfers.toDevice - before.toDevice, bytes);
      assert.equal(e.transfers.toHost - before.toHost, chosen.batch * 4, "the sequence log-probabilities only");
    } finally {
      e.dispose();
    }
  }
});

test(`a decoding step moves its tokens, positions and attention bias in and its logits out, whatever the model's depth (${provider})`, async () => {
  const prompts = [[1, 5, 9, 13], [1, 7]];
  const B = prompts.length;
  const T = 4;
  const moved: TransferCounts[] = [];
  for (const c of [small, large]) {
    const e = new OrtEngine(c, initWeights(c, 5), { executionProvider: provider, threads: 1 });
    try {
      // The weights go to a device once, lazily, with the first run: a first decode session takes them there.
      (await e.startDecoding(prompts)).session.dispose();
      let before = { ...e.transfers };
      const { session } = await e.startDecoding(prompts);
      const L = c.num_hidden_layers;
      const kvRow = c.num_key_value_heads * (c.hidden_size / c.num_attention_heads) * 4; // bytes of one position's keys, one row
      // The prompt pass. On a device the first past is one zero slot per layer for keys and values, the only
      // cache bytes that ever go in; the bias spans it (or, on the CPU, the first bucket of 32 slots) and the prompt.
      const slots = onDevice ? 1 : 32;
      assert.equal(e.transfers.toDevice - before.toDevice, 2 * B * T * 4 + B * T * (slots + T) * 4 + (onDevice ? 2 * L * B * kvRow : 0), "prompt pass: bytes in");
      assert.equal(e.transfers.toHost - before.toHost, B * c.vocab_size * 4, "prompt pass: the last position's logits back");
      for (const step of [0, 1, 2]) {
        before = { ...e.transfers };
        await session.step([3 + step, 4 + step]);
        // The bias: [B, 1, 1, slots + 1], the device cache's slots being the lead, the prompt and each step so far.
        const width = (onDevice ? 1 + T + step : 32) + 1;
        const d = delta(e.transfers, before);
        assert.equal(d.toDevice, 2 * B * 4 + B * width * 4, `step ${step}: bytes in`);
        assert.equal(d.toHost, B * c.vocab_size * 4, `step ${step}: the logits back`);
        // On the CPU the host writes each step's new keys and values into its cache; on a device they stay there.
        assert.equal(d.withinHost, onDevice ? 0 : 2 * L * B * kvRow, `step ${step}: new keys and values on the host`);
        if (step === 2) moved.push(d);
      }
      // Disposed while a step runs: the cache that step reads is released after it, and the step says so.
      const inFlight = session.step([9, 9]);
      session.dispose();
      await assert.rejects(inFlight, /disposed/);
      const again = await e.startDecoding(prompts);
      assert.equal(again.logits.length, B * c.vocab_size);
      again.session.dispose();
    } finally {
      e.dispose();
    }
  }
  assert.equal(moved[0]!.toDevice, moved[1]!.toDevice, "the same bytes in for 1 layer as for 3");
});

test("a parameter larger than one GPU buffer is kept in row blocks that fit: Qwen3-1.7B's embedding in two", () => {
  const c = tinyConfig(151936, { hidden_size: 2048, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 16, num_key_value_heads: 8, max_position_embeddings: 64 });
  const { slots, blocks } = splitSlots(slotsOf(c), WEBGPU_BUFFER_LIMIT_BYTES);
  assert.deepEqual(blocks.get("model.embed_tokens.weight"), [75968, 75968]);
  assert.deepEqual([...blocks.keys()], ["model.embed_tokens.weight"], "nothing else is that large");
  assert.ok(slots.every((s) => s.size * 4 <= WEBGPU_BUFFER_LIMIT_BYTES));
  assert.equal(slots.reduce((n, s) => n + s.size, 0), parameterCount(c));
});

test(`with its vocabulary tables in row blocks the engine trains, reads back and decodes as with whole tables (${provider}, 3 blocks)`, { skip: onDevice ? false : "the webgpu provider's form: runs in the child below" }, async () => {
  for (const tied of [true, false]) {
    const c: ModelConfig = { ...small, vocab_size: 256, tie_word_embeddings: tied };
    const w = initWeights(c, 7, 0.3);
    // Against the same provider with whole tables: AdamW's first steps magnify float32 differences in tiny
    // gradients (an update is about lr · sign(g)), so an engine on another provider is no reference for the weights.
    const reference = new OrtEngine(c, w, { executionProvider: provider, threads: 1 });
    // 256 rows × 32 floats = 32 KiB: buffers of 12 KiB hold 96 rows, so the tables go in blocks of 86, 86 and 84
    // rows (the largest other parameter is 8 KiB).
    const blocked = new OrtEngine(c, w, { executionProvider: provider, threads: 1 }, { bufferLimitBytes: 12 * 1024 });
    try {
      assert.deepEqual([...blocked.rowBlocks], [["model.embed_tokens.weight", [86, 86, 84]], ...(tied ? [] : [["lm_head.weight", [86, 86, 84]]])]);
      assert.equal(reference.rowBlocks.size, 0);
      for (const e of [reference, blocked]) {
        for (const seed of [1, 2]) await e.sftBackward(batchOf(4, seed), 0.5);
        await e.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
        await e.sftBackward(batchOf(4, 3), 1);
      }
      const [gr, gb] = [(await reference.accumulatedGradients())!, (await blocked.accumulatedGradients())!];
      const [wr, wb] = [await reference.getWeights(), await blocked.getWeights()];
      for (const [name, x] of wr) {
        assert.deepEqual(wb.get(name)!.shape, x.shape, name);
        const near = (a: Float32Array, b: Float32Array, tol: number, what: string): void => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol * Math.max(1, Math.abs(v)), `${what} ${name}[${i}]: ${v} vs ${b[i]}`));
        near(x.data, wb.get(name)!.data, 1e-5, "weights");
        near(gr.get(name)!.data, gb.get(name)!.data, 1e-4, "gradients");
      }
      const prompts = [[1, 5, 90, 200], [1, 255]];
      const a = await reference.startDecoding(prompts);
      const b = await blocked.startDecoding(prompts);
      const worst = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
      assert.ok(worst(a.logits, b.logits) < 1e-4, `prompt logits differ by ${worst(a.logits, b.logits)}`);
      const [sa, sb] = [await a.session.step([7, 8]), await b.session.step([7, 8])];
      assert.ok(worst(sa, sb) < 1e-4, `step logits differ by ${worst(sa, sb)}`);
      a.session.dispose();
      b.session.dispose();
    } finally {
      reference.dispose();
      blocked.dispose();
    }
  }
});

test(`decoding each family with its KV cache on the device gives the CPU's logits (${provider})`, { skip: onDevice ? false : "the webgpu provider's form: runs in the child below" }, async () => {
  for (const [name, c] of Object.entries(FAMILIES)) {
    const w = randomWeights(c, 3);
    const V = c.vocab_size;
    const cpu = new OrtEngine(c, w, { executionProvider: "cpu", threads: 1 });
    const device = new OrtEngine(c, w, { executionProvider: provider, threads: 1 });
    try {
      // Rows of 5 and 2 tokens (the second left-padded), then 30 steps: the device's cache grows by one each step.
      const prompts = [[1, 5, 9, 13, 20].map((t) => t % V), [1, 7]];
      const [a, b] = [await cpu.startDecoding(prompts), await device.startDecoding(prompts)];
      const worst = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
      let err = worst(a.logits, b.logits);
      for (let s = 0; s < 30; s++) {
        const next = [(3 + s) % V, (4 + 2 * s) % V];
        err = Math.max(err, worst(await a.session.step(next), await b.session.step(next)));
      }
      assert.ok(err < 1e-4, `${name}: logits differ by ${err}`);
      a.session.dispose();
      b.session.dispose();
    } finally {
      cpu.dispose();
      device.dispose();
    }
  }
});

test(`a decode session goes on with the weights it started with while an optimizer step and new weights replace them (${provider})`, { skip: onDevice ? false : "the webgpu provider's form: runs in the child below" }, async () => {
  const c = small;
  const w = randomWeights(c, 5);
  const V = c.vocab_size;
  const cpu = new OrtEngine(c, w, { executionProvider: "cpu", threads: 1 });
  const device = new OrtEngine(c, w, { executionProvider: provider, threads: 1 });
  try {
    const prompts = [[1, 5, 9, 13].map((t) => t % V), [1, 7]];
    const next = (s: number): number[] => [(3 + s) % V, (4 + 2 * s) % V];
    const worst = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
    const [a, b] = [await cpu.startDecoding(prompts), await device.startDecoding(prompts)];
    let err = worst(a.logits, b.logits);
    for (let s = 0; s < 4; s++) err = Math.max(err, worst(await a.session.step(next(s)), await b.session.step(next(s))));
    // Training replaces the device's weight tensors (the optimizer's outputs), then new weights are uploaded.
    await device.sftBackward(batchOf(2, 7), 1);
    await device.optimizerStep(1e-2, DEFAULT_OPTIMIZER);
    const trained = await device.getWeights();
    device.setWeights(randomWeights(c, 6));
    await device.sftBackward(batchOf(2, 8), 1); // uploads them, and the earlier tensors are let go
    for (let s = 4; s < 10; s++) err = Math.max(err, worst(await a.session.step(next(s)), await b.session.step(next(s))));
    assert.ok(err < 1e-4, `the session started before the step read other weights: logits differ by ${err}`);
    a.session.dispose();
    b.session.dispose();
    // A new session reads the weights as they are now.
    cpu.setWeights(randomWeights(c, 6));
    const [a2, b2] = [await cpu.startDecoding(prompts), await device.startDecoding(prompts)];
    assert.ok(worst(a2.logits, b2.logits) < 1e-4, "a new session decodes with the new weights");
    assert.ok(worst(a.logits, a2.logits) > 1e-3, "the new weights give other logits");
    assert.ok(trained.size > 0);
    a2.session.dispose();
    b2.session.dispose();
  } finally {
    cpu.dispose();
    device.dispose();
  }
});

test("the meter counts host-held state fed to a provider that computes elsewhere (cuda keeps its state on the host): every run's weights in, its gradients out", async () => {
  const ort = loadOrt();
  const f32 = (n: number) => new ort.Tensor("float32", new Float32Array(n), [n]);
  // A session's run as ORT answers it on the CPU side: outputs in host memory.
  const session = { run: async () => ({ "grad.w": f32(1000), loss: f32(1) }) } as unknown as OrtSession;
  const state = { w: f32(1000) }, host = { input_ids: new ort.Tensor("int32", new Int32Array(16), [16]) };
  const onCpu: TransferCounts = { toDevice: 0, toHost: 0, withinHost: 0 };
  await meteredRun(session, onCpu, true, state, host);
  assert.deepEqual(onCpu, { toDevice: 64, toHost: 4, withinHost: 4000 });
  const onCuda: TransferCounts = { toDevice: 0, toHost: 0, withinHost: 0 };
  await meteredRun(session, onCuda, false, state, host);
  assert.deepEqual(onCuda, { toDevice: 64 + 4000, toHost: 4 + 4000, withinHost: 0 });
});

if (provider === "cpu") {
  test("on the webgpu provider (software GPU) the state stays on the device: the same checks", { skip: softwareGpuSkip, timeout: 300_000 }, () => {
    const r = runOnSoftwareGpu(resolve(__dirname, "transfers.test.ts"), { STS_TRANSFER_PROVIDER: "webgpu" }, { timeoutMs: 290_000 });
    assert.equal(r.status, 0, `the webgpu run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /ℹ pass 8/);
  });
}
