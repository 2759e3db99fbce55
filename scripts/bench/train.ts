/**
 * `npm run bench:train`: tokens/s of an SFT step, a DPO step (chosen + rejected) and KV-cache sampling for a
 * stated model size on our TensorFlow.js engine, beside the same model and steps in PyTorch (the peer script,
 * Debian's python3-torch) on 1 and 2 threads, as ratios from one run. Not part of `npm test`.
 *
 *   npm run bench:train [-- --backends wasm,cpu --steps 8 --hidden 128 --layers 4]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initTfBackend, getTf, type TfBackendName } from "../../src/core/engine/tfBackend";
import { TfEngine } from "../../src/core/engine/tfEngine";
import { DEFAULT_OPTIMIZER } from "../../src/core/engine/computeEngine";
import { tinyConfig, parameterCount, type ModelConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { makeBatch } from "../../src/core/train/batching";
import { sampleToken } from "../../src/core/sample/sampler";
import { Rng } from "../../src/core/util/rng";

const { values } = parseArgs({
  options: {
    backends: { type: "string", default: "" },
    steps: { type: "string", default: "8" },
    batch: { type: "string", default: "16" },
    length: { type: "string", default: "64" },
    hidden: { type: "string", default: "128" },
    layers: { type: "string", default: "4" },
    vocab: { type: "string", default: "512" },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const steps = Number(values.steps);
const B = Number(values.batch);
const T = Number(values.length);
const D = Number(values.hidden);
const config: ModelConfig = tinyConfig(Number(values.vocab), { hidden_size: D, intermediate_size: Math.round((D * 11) / 4 / 8) * 8, num_hidden_layers: Number(values.layers), num_attention_heads: D / 32, num_key_value_heads: Math.max(1, D / 64) });
const PROMPT = 16;
const NEW = 48;

interface Rates {
  sft: number;
  dpo: number;
  sample: number;
}

async function time(fn: () => Promise<void>, reps: number, tokens: number): Promise<number> {
  await fn();
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (tokens * reps * 1000) / (performance.now() - t0);
}

async function ours(force: TfBackendName | undefined): Promise<{ label: string; rates: Rates }> {
  const choice = await initTfBackend(force ? { force } : {});
  const engine = new TfEngine(getTf(), config, initWeights(config, 0), choice.detail);
  const rng = new Rng(1);
  const seqs = Array.from({ length: B }, () => ({ ids: Array.from({ length: T + 1 }, () => rng.int(3, config.vocab_size - 1)), promptLength: T / 4 }));
  const batch = makeBatch(seqs, config.pad_token_id, T);
  const chosen = makeBatch(seqs.slice(0, B / 2), config.pad_token_id, T);
  const rejected = makeBatch(seqs.slice(B / 2), config.pad_token_id, T);
  const zeros = new Float32Array(B / 2);
  const reps = choice.name === "cpu" ? Math.max(1, Math.floor(steps / 4)) : steps;
  const sft = await time(async () => {
    await engine.sftBackward(batch, 1);
    await engine.optimizerStep(1e-4, DEFAULT_OPTIMIZER);
  }, reps, B * T);
  const dpo = await time(async () => {
    await engine.dpoBackward(chosen, rejected, zeros, zeros, 0.1, 1);
    await engine.optimizerStep(1e-4, DEFAULT_OPTIMIZER);
  }, reps, B * T);
  const prompts = seqs.map((s) => s.ids.slice(0, PROMPT));
  const V = config.vocab_size;
  const sample = await time(async () => {
    let { session, logits } = await engine.startDecoding(prompts);
    for (let s = 0; s < NEW; s++) {
      const next = prompts.map((_, b) => sampleToken(logits.subarray(b * V, (b + 1) * V), 1, 1, 0, rng));
      if (s < NEW - 1) logits = await session.step(next);
    }
    session.dispose();
  }, Math.max(1, Math.ceil(reps / 3)), B * NEW);
  engine.dispose();
  return { label: `tfjs ${choice.detail}`, rates: { sft, dpo, sample } };
}

function peer(threads: number): Rates | string {
  const script = join(__dirname, "peer_train.py");
  if (!existsSync(values.python)) return `PyTorch peer skipped: ${values.python} not found (apt-get install python3-torch libopenblas0-pthread)`;
  const r = spawnSync(values.python, [script, "--config", JSON.stringify(config), "--batch", String(B), "--length", String(T), "--prompt", String(PROMPT), "--new", String(NEW), "--steps", String(steps), "--threads", String(threads)], {
    encoding: "utf8",
    // OpenBLAS's own pthreads on top of torch's threads oversubscribe 2 cores (measured: 2 torch threads fell
    // from ~12k to ~4-6k tok/s); one BLAS thread inside torch's threads is PyTorch at its best here.
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) {
    const why = /No module named 'torch'/.test(r.stderr) ? "python3-torch is not installed (apt-get install python3-torch libopenblas0-pthread)" : r.stderr.trim().split("\n").pop();
    return `PyTorch peer skipped: ${why}`;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop() as string) as Rates;
}

async function main(): Promise<void> {
  const forced = values.backends ? (values.backends.split(",") as TfBackendName[]) : [undefined];
  console.log(`model: Llama-style, ${(parameterCount(config) / 1e6).toFixed(2)}M parameters (hidden ${config.hidden_size}, ${config.num_hidden_layers} layers, ${config.num_attention_heads} heads / ${config.num_key_value_heads} kv, vocab ${config.vocab_size}); SFT/DPO step: ${B} × ${T} tokens (DPO: ${B / 2} pairs); sampling: ${B} prompts of ${PROMPT}, ${NEW} new tokens, KV cache`);
  const rows: Array<{ label: string; rates: Rates }> = [];
  for (const f of forced) rows.push(await ours(f));
  const peers: Array<{ label: string; rates: Rates }> = [];
  for (const threads of [1, 2]) {
    const p = peer(threads);
    if (typeof p === "string") {
      console.log(p);
      break;
    }
    peers.push({ label: `PyTorch ${(p as Rates & { torch?: string }).torch ?? ""} ${threads} thread${threads > 1 ? "s" : ""}`, rates: p });
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString("en-US");
  const header = ["engine", "SFT tok/s", "DPO tok/s", "sample tok/s", ...peers.flatMap((p) => [`SFT ÷ ${p.label}`, `DPO ÷`, `sample ÷`])];
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const r of [...rows, ...peers]) {
    const ratios = rows.includes(r) ? peers.flatMap((p) => (["sft", "dpo", "sample"] as const).map((k) => `${(r.rates[k] / p.rates[k]).toFixed(2)}x`)) : peers.flatMap(() => ["", "", ""]);
    console.log(`| ${[r.label, fmt(r.rates.sft), fmt(r.rates.dpo), fmt(r.rates.sample), ...ratios].join(" | ")} |`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench:train: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
