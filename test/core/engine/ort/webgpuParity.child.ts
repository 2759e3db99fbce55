// Run by webgpu.test.ts in a process started with the software GPU's environment (the Vulkan loader reads it at
// process start). Trains two steps and decodes greedily with the same tiny model on the "cpu" and "webgpu"
// execution providers and prints what the parent compares, as one JSON line.
import { tinyConfig } from "../../../../src/core/model/config";
import { initWeights } from "../../../../src/core/model/weights";
import { OrtEngine } from "../../../../src/core/engine/ort/ortEngine";
import { DEFAULT_OPTIMIZER } from "../../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../../src/core/train/batching";
import { Rng } from "../../../../src/core/util/rng";

const config = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
const rng = new Rng(5);
const seqs = Array.from({ length: 6 }, () => ({ ids: [1, ...Array.from({ length: rng.int(6, 14) }, () => rng.int(3, 39)), 2], promptLength: 3 }));
const batch = makeBatch(seqs, 0, 32);

async function run(provider: "cpu" | "webgpu"): Promise<{ losses: number[]; gradNorms: number[]; logProbs: number[]; tokens: number[][]; ms: number }> {
  const t0 = performance.now();
  const engine = new OrtEngine(config, initWeights(config, 11, 0.2), { executionProvider: provider, threads: 1 });
  const losses: number[] = [];
  const gradNorms: number[] = [];
  for (let step = 0; step < 2; step++) {
    losses.push((await engine.sftBackward(batch, 1)).loss);
    gradNorms.push((await engine.optimizerStep(1e-2, DEFAULT_OPTIMIZER)).gradNorm);
  }
  const logProbs = [...(await engine.sequenceLogProbs(batch))];
  const prompts = [[1, 5, 6], [1, 7], [1, 9, 10, 11]];
  const { session, logits } = await engine.startDecoding(prompts);
  const tokens: number[][] = prompts.map(() => []);
  let current = logits;
  for (let t = 0; t < 8; t++) {
    const next = prompts.map((_, r) => {
      const row = current.subarray(r * config.vocab_size, (r + 1) * config.vocab_size);
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
      return best;
    });
    next.forEach((id, r) => tokens[r]!.push(id));
    current = await session.step(next);
  }
  session.dispose();
  engine.dispose();
  return { losses, gradNorms, logProbs, tokens, ms: performance.now() - t0 };
}

void (async () => {
  const cpu = await run("cpu");
  const webgpu = await run("webgpu");
  process.stdout.write(JSON.stringify({ cpu, webgpu }) + "\n");
})().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
