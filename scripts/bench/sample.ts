/**
 * `npm run bench:sample`: KV-cache sampling throughput (new tokens per second) at batch 1, 16 and 64 for the ORT
 * engine (1 and 2 threads), the TensorFlow.js engine and the PyTorch peer (1 and 2 threads), with the ratios
 * ORT ÷ PyTorch (same thread count) and ORT ÷ TF.js per batch size, from one run. Not part of `npm test`.
 *
 * Like for like with the peer: raw decode steps (ComputeEngine.startDecoding / DecodeSession.step), one
 * temperature draw per row from the returned logits — no tokenizer, calculator or stop checks (the product's
 * sampler adds those). A generation is the prompt pass plus new − 1 cached steps, i.e. `new` tokens per row, and
 * its time counts all of it. The engines take turns round by round (order rotated each round); each rate is the
 * median generation time over the rounds.
 *
 *   npm run bench:sample [-- --batches 1,16,64 --prompt 32 --new 128 --rounds 5 --temperature 0.7 --spin both]
 */
import { parseArgs } from "node:util";
import type { ComputeEngine } from "../../src/core/engine/computeEngine";
import { sampleToken } from "../../src/core/sample/sampler";
import { Rng } from "../../src/core/util/rng";
import { COMMON_OPTIONS, benchConfig, describeModel, fmtRate, fmtRatio, loadLine, median, pause, printTable, rotated, startContenders, stopContenders, type Contender } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    rounds: { type: "string", default: "5" },
    batches: { type: "string", default: "1,16,64" },
    prompt: { type: "string", default: "32" },
    new: { type: "string", default: "128" },
    temperature: { type: "string", default: "0.7" },
  },
});
const rounds = Number(values.rounds);
const batches = values.batches.split(",").map(Number);
const P = Number(values.prompt);
const N = Number(values.new);
const temperature = Number(values.temperature);
const config = benchConfig(values);
const V = config.vocab_size;
const TARGET = 1.5;

/** Seconds of one generation of ours: N new tokens for each of the B prompts. */
async function ourGeneration(engine: ComputeEngine, prompts: number[][], rng: Rng): Promise<number> {
  const t0 = performance.now();
  let { session, logits } = await engine.startDecoding(prompts);
  for (let s = 0; s < N; s++) {
    const next = prompts.map((_, b) => sampleToken(logits.subarray(b * V, (b + 1) * V), temperature, 1, 0, rng));
    if (s < N - 1) logits = await session.step(next);
  }
  session.dispose();
  return (performance.now() - t0) / 1000;
}

async function generations(c: Contender, B: number, reps: number, rng: Rng): Promise<number[]> {
  if (c.peer) return c.peer.time({ op: "sample", batch: B, prompt: P, new: N, reps, temperature });
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(3, V - 1)));
    out.push(await ourGeneration(c.engine!, prompts, rng));
  }
  return out;
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`bench:sample — model: ${describeModel(config)}`);
  console.log(`generation: prompts of ${P} tokens, ${N} new tokens per row (prompt pass + ${N - 1} KV-cache steps), temperature ${temperature}; tokens/s = B × ${N} / generation time`);
  console.log(`load average at start (1, 5, 15 min): ${loadLine()}`);
  const { contenders, notes } = await startContenders(config, values);
  for (const n of notes) console.log(n);
  const rng = new Rng(7);
  try {
    // Warm-up, untimed: opens the decode sessions and runs every shape once.
    for (const c of contenders) for (const B of batches) await generations(c, B, 1, rng);
    const times = new Map<Contender, Map<number, number[]>>(contenders.map((c) => [c, new Map(batches.map((B) => [B, []]))]));
    for (let r = 0; r < rounds; r++) {
      for (const B of batches) {
        for (const c of rotated(contenders, r)) {
          times.get(c)!.get(B)!.push(...(await generations(c, B, 1, rng)));
          // Lets the last engine's idle threads stop spinning before the next one starts.
          await pause(Number(values.gap));
        }
      }
      process.stderr.write(`\rround ${r + 1}/${rounds} (load ${loadLine()})   `);
    }
    process.stderr.write("\n");
    const rate = (c: Contender, B: number): number => (B * N) / median(times.get(c)!.get(B)!);
    const tf = contenders.find((c) => c.family === "tfjs");
    const peerOf = (c: Contender): Contender | undefined => contenders.find((p) => p.family === "torch" && p.threads === c.threads);
    const hasPeer = contenders.some((c) => c.family === "torch");
    console.log(`\nmedian generation over ${rounds} rounds, engines interleaved, order rotated each round; load average at end: ${loadLine()}`);
    const header = ["engine", ...batches.map((B) => `B=${B} tok/s`), ...(hasPeer ? batches.map((B) => `B=${B} ÷ PyTorch`) : []), ...batches.map((B) => `B=${B} ÷ TF.js`)];
    const rows = contenders.map((c) => {
      const p = c.family === "ort" ? peerOf(c) : undefined;
      return [
        c.label,
        ...batches.map((B) => fmtRate(rate(c, B))),
        ...(hasPeer ? batches.map((B) => (p ? fmtRatio(rate(c, B) / rate(p, B)) : "")) : []),
        ...batches.map((B) => (c.family === "ort" && tf ? fmtRatio(rate(c, B) / rate(tf, B)) : "")),
      ];
    });
    printTable(header, rows);
    if (hasPeer) {
      console.log("ORT ÷ PyTorch compares equal thread counts.");
      const verdicts = contenders
        .filter((c) => c.family === "ort")
        .map((c) => {
          const missed = batches.filter((B) => rate(c, B) / rate(peerOf(c)!, B) < TARGET);
          return `${c.label}: ${missed.length ? `missed at B=${missed.join(", ")}` : "met"}`;
        });
      console.log(`target (issue 7): ORT ÷ PyTorch ≥ ${TARGET}x at every batch size — ${verdicts.join("; ")}`);
    }
  } finally {
    stopContenders(contenders);
  }
  console.log(`bench:sample took ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  console.error(`bench:sample: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
