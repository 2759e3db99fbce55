/**
 * `npm run bench:train`: tokens/s of an SFT step and of a DPO step (chosen + rejected), each with its AdamW step,
 * for one model on the ORT engine (1 and 2 threads), the TensorFlow.js engine and the PyTorch peer (Debian's
 * python3-torch, 1 and 2 threads), with the ratios ORT ÷ PyTorch (same thread count) and ORT ÷ TF.js, from one
 * run. The engines take turns round by round (order rotated each round) so that load from elsewhere hits all of
 * them alike; each rate is the median step time over all rounds. Not part of `npm test`.
 *
 *   npm run bench:train [-- --rounds 8 --steps 4 --tf-steps 1 --spin on|off|both --hidden 128 --layers 4]
 */
import { parseArgs } from "node:util";
import { DEFAULT_OPTIMIZER, type ComputeEngine, type TokenBatch } from "../../src/core/engine/computeEngine";
import { makeBatch } from "../../src/core/train/batching";
import { Rng } from "../../src/core/util/rng";
import { COMMON_OPTIONS, benchConfig, describeModel, fmtRate, fmtRatio, loadLine, median, pause, printTable, rotated, startContenders, stopContenders, type Contender } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    rounds: { type: "string", default: "8" },
    steps: { type: "string", default: "4" },
    "tf-steps": { type: "string", default: "1" },
    batch: { type: "string", default: "16" },
    length: { type: "string", default: "64" },
  },
});
const rounds = Number(values.rounds);
const B = Number(values.batch);
const T = Number(values.length);
const config = benchConfig(values);
const KINDS = ["sft", "dpo"] as const;
type Kind = (typeof KINDS)[number];

interface Batches {
  all: TokenBatch;
  chosen: TokenBatch;
  rejected: TokenBatch;
  zeros: Float32Array;
}

function batches(): Batches {
  const rng = new Rng(1);
  // Random tokens; the first quarter of each row is prompt (mask 0), as in the peer.
  const seqs = Array.from({ length: B }, () => ({ ids: Array.from({ length: T + 1 }, () => rng.int(3, config.vocab_size - 1)), promptLength: T / 4 }));
  return {
    all: makeBatch(seqs, config.pad_token_id, T),
    chosen: makeBatch(seqs.slice(0, B / 2), config.pad_token_id, T),
    rejected: makeBatch(seqs.slice(B / 2), config.pad_token_id, T),
    zeros: new Float32Array(B / 2),
  };
}

/** Seconds of one training step of ours: the backward pass, then the optimiser step. */
async function ourStep(engine: ComputeEngine, kind: Kind, b: Batches): Promise<number> {
  const t0 = performance.now();
  if (kind === "sft") await engine.sftBackward(b.all, 1);
  else await engine.dpoBackward(b.chosen, b.rejected, b.zeros, b.zeros, 0.1, 1);
  await engine.optimizerStep(1e-4, DEFAULT_OPTIMIZER);
  return (performance.now() - t0) / 1000;
}

async function steps(c: Contender, kind: Kind, reps: number, b: Batches): Promise<number[]> {
  if (c.peer) return c.peer.time({ op: kind, batch: B, length: T, reps });
  const out: number[] = [];
  for (let i = 0; i < reps; i++) out.push(await ourStep(c.engine!, kind, b));
  return out;
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`bench:train — model: ${describeModel(config)}`);
  console.log(`step: ${B} × ${T} tokens (DPO: ${B / 2} chosen + ${B / 2} rejected rows), backward + clipped AdamW; tokens/s counts every position (B × T) per step`);
  console.log(`load average at start (1, 5, 15 min): ${loadLine()}`);
  const { contenders, notes } = await startContenders(config, values);
  for (const n of notes) console.log(n);
  const b = batches();
  const reps = (c: Contender): number => (c.family === "tfjs" ? Number(values["tf-steps"]) : Number(values.steps));
  try {
    // Warm-up, untimed: builds and opens sessions, compiles kernels, settles allocators.
    for (const c of contenders) for (const kind of KINDS) await steps(c, kind, 2, b);
    const times = new Map<Contender, Record<Kind, number[]>>(contenders.map((c) => [c, { sft: [], dpo: [] }]));
    for (let r = 0; r < rounds; r++) {
      for (const c of rotated(contenders, r)) {
        for (const kind of KINDS) times.get(c)![kind].push(...(await steps(c, kind, reps(c), b)));
        // Lets the last engine's idle threads stop spinning before the next one starts.
        await pause(Number(values.gap));
      }
      process.stderr.write(`\rround ${r + 1}/${rounds} (load ${loadLine()})   `);
    }
    process.stderr.write("\n");
    const rate = (c: Contender, kind: Kind): number => (B * T) / median(times.get(c)![kind]);
    const best = (c: Contender, kind: Kind): number => (B * T) / Math.min(...times.get(c)![kind]);
    const tf = contenders.find((c) => c.family === "tfjs");
    const peerOf = (c: Contender): Contender | undefined => contenders.find((p) => p.family === "torch" && p.threads === c.threads);
    const hasPeer = contenders.some((c) => c.family === "torch");
    console.log(`\nmedian step over ${rounds} rounds (${values.steps} steps per round each; TF.js ${values["tf-steps"]}), engines interleaved, order rotated each round; load average at end: ${loadLine()}`);
    const header = ["engine", "SFT tok/s", "DPO tok/s", ...(hasPeer ? ["SFT ÷ PyTorch", "DPO ÷ PyTorch"] : []), "SFT ÷ TF.js", "DPO ÷ TF.js", "best SFT / DPO tok/s"];
    const rows = contenders.map((c) => {
      const p = c.family === "ort" ? peerOf(c) : undefined;
      const vsPeer = hasPeer ? KINDS.map((k) => (p ? fmtRatio(rate(c, k) / rate(p, k)) : "")) : [];
      const vsTf = KINDS.map((k) => (c.family === "ort" && tf ? fmtRatio(rate(c, k) / rate(tf, k)) : ""));
      return [c.label, fmtRate(rate(c, "sft")), fmtRate(rate(c, "dpo")), ...vsPeer, ...vsTf, `${fmtRate(best(c, "sft"))} / ${fmtRate(best(c, "dpo"))}`];
    });
    printTable(header, rows);
    if (hasPeer) {
      console.log("ORT ÷ PyTorch compares equal thread counts.");
      const verdicts = contenders
        .filter((c) => c.family === "ort")
        .map((c) => {
          const target = c.threads === 1 ? 1.0 : 1.3;
          const p = peerOf(c)!;
          const got = KINDS.map((k) => rate(c, k) / rate(p, k));
          return `${c.label}: SFT ${fmtRatio(got[0]!)}, DPO ${fmtRatio(got[1]!)} vs target ≥ ${target.toFixed(1)}x — ${got.every((x) => x >= target) ? "met" : "missed"}`;
        });
      console.log(`targets (issue 7): ${verdicts.join("; ")}`);
    }
  } finally {
    stopContenders(contenders);
  }
  console.log(`bench:train took ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  console.error(`bench:train: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
