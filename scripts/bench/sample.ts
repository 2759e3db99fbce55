/**
 * `npm run bench:sample`: KV-cache sampling throughput (new tokens per second) at batch 1, 16 and 64 for the ORT
 * engine (1 and 2 threads), the TensorFlow.js engine and the PyTorch peer (Debian's 1.13 and .venv's 2.x, each in
 * every thread setup that applies; 1 and 2 threads), with the ratios ORT ÷ PyTorch (against the fastest PyTorch at
 * the same thread count, per batch size) and ORT ÷ TF.js per batch size and each contender's peak memory, from
 * one run, and a last line `targets: …` with issue 22's sampling and memory targets and floors met or missed.
 * Not part of `npm test`.
 *
 * Like for like with the peer: raw decode steps (ComputeEngine.startDecoding / DecodeSession.step), one
 * temperature draw per row from the returned logits — no tokenizer, calculator or stop checks (the product's
 * sampler adds those). The peer's prompt pass computes the logits of the last position only, as transformers'
 * generate does (logits_to_keep=1). A generation is the prompt pass plus new − 1 cached steps, i.e. `new` tokens
 * per row, and its time counts all of it. Each contender runs in a child process of its own (benchChild.ts,
 * peer_train.py --serve) whose peak resident set (VmHWM) is its peak RSS column. The contenders take turns round
 * by round (order rotated each round); each rate is the median generation time over the rounds. At the 135M
 * preset each process lives for its turn only and runs every batch size in it (contenders.ts, --lifetime).
 *
 *   npm run bench:sample [-- --batches 1,16,64 --prompt 32 --new 128 --rounds 5 --temperature 0.7 --spin both]
 *                        [-- --python /usr/bin/python3,.venv/bin/python --peer-setups blas,torch,openmp]
 *   npm run bench:sample -- --preset smollm2-135m     (SmolLM2-135M's shape; 16-token prompts, 32 new tokens, 2 rounds)
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, benchConfig, describeModel, fastestPeer, fmtBytes, fmtRate, fmtRatio, judge, lineup, loadLine, median, pause, peerReports, presetOf, printTable, rotated, type Contender } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    rounds: { type: "string", default: "" },
    batches: { type: "string", default: "1,16,64" },
    prompt: { type: "string", default: "" },
    new: { type: "string", default: "" },
    temperature: { type: "string", default: "0.7" },
  },
});
const big = presetOf(values) === "smollm2-135m";
const rounds = Number(values.rounds || (big ? 2 : 5));
const batches = values.batches.split(",").map(Number);
const P = Number(values.prompt || (big ? 16 : 32));
const N = Number(values.new || (big ? 32 : 128));
const temperature = Number(values.temperature);
const config = benchConfig(values);
// Issue 22: sampling ≥ 2x the fastest PyTorch (floor 1.5x) at every batch size; peak RSS ≤ 0.75x (floor 1.0x).
const TARGET = 2.0;
const FLOOR = 1.5;

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`bench:sample — model: ${describeModel(config)}`);
  console.log(`generation: prompts of ${P} tokens, ${N} new tokens per row (prompt pass + ${N - 1} KV-cache steps), temperature ${temperature}; tokens/s = B × ${N} / generation time`);
  console.log(`load average at start (1, 5, 15 min): ${loadLine()}`);
  const { contenders, notes, lifetime } = lineup(config, values);
  for (const n of notes) console.log(n);
  console.log(`each contender in its own process (${lifetime === "turn" ? "started for each turn, every batch size in it, and ended after it: one model in memory at a time" : "all kept for the run"})`);
  const times = new Map<Contender, Map<number, number[]>>(contenders.map((c) => [c, new Map(batches.map((B) => [B, []]))]));
  const peaks = new Map<Contender, number>();
  const failed = new Map<Contender, string>();
  const cmd = (B: number, n: number) => ({ op: "sample", batch: B, prompt: P, new: n, reps: 1, temperature }) as const;
  const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  // Warm-up, untimed: opens the decode sessions and runs every shape once (a short generation where each turn
  // starts a process, so the warm-up does not cost a full generation per turn at 135M).
  const open = async (c: Contender): Promise<boolean> => {
    try {
      c.proc = await c.open();
      for (const B of batches) await c.proc.time(cmd(B, lifetime === "turn" ? 2 : N));
      return true;
    } catch (e) {
      failed.set(c, why(e));
      await close(c);
      return false;
    }
  };
  const close = async (c: Contender): Promise<void> => {
    if (!c.proc) return;
    try {
      peaks.set(c, Math.max(peaks.get(c) ?? 0, await c.proc.peakBytes()));
    } catch (e) {
      if (!failed.has(c)) failed.set(c, why(e));
    }
    await c.proc.close();
    delete c.proc;
  };
  const generate = async (c: Contender, B: number): Promise<void> => {
    try {
      times.get(c)!.get(B)!.push(...(await c.proc!.time(cmd(B, N))));
    } catch (e) {
      failed.set(c, why(e));
    }
    // Lets the last engine's idle threads stop spinning before the next one starts.
    await pause(Number(values.gap));
  };

  try {
    if (lifetime === "run") for (const c of contenders) await open(c);
    for (let r = 0; r < rounds; r++) {
      if (lifetime === "run") {
        for (const B of batches) for (const c of rotated(contenders, r)) if (!failed.has(c)) await generate(c, B);
      } else {
        for (const c of rotated(contenders, r)) {
          if (failed.has(c) || !(await open(c))) continue;
          for (const B of batches) if (!failed.has(c)) await generate(c, B);
          await close(c);
          process.stderr.write(`\rround ${r + 1}/${rounds}: ${c.label} done (load ${loadLine()}, ${((performance.now() - started) / 1000).toFixed(0)} s)   `);
        }
      }
      process.stderr.write(`\rround ${r + 1}/${rounds} (load ${loadLine()}, ${((performance.now() - started) / 1000).toFixed(0)} s)   `);
    }
    process.stderr.write("\n");
  } finally {
    for (const c of contenders) await close(c);
  }
  for (const [c, e] of failed) console.log(`${c.label}: failed — ${e}`);

  const rate = (c: Contender, B: number): number => {
    const t = times.get(c)!.get(B)!;
    return t.length ? (B * N) / median(t) : NaN;
  };
  const fmt = (x: number, f: (x: number) => string): string => (Number.isFinite(x) ? f(x) : "—");
  const tf = contenders.find((c) => c.family === "tfjs");
  // The fair peer: per batch size, the fastest PyTorch (build and thread setup) at the same thread count; for
  // memory, the PyTorch at that count with the best geometric-mean rate over the batch sizes.
  const peerOf = (c: Contender, B: number): Contender | undefined => fastestPeer(contenders, c, (p) => rate(p, B));
  const overall = (p: Contender): number => Math.exp(batches.reduce((sum, B) => sum + Math.log(rate(p, B)), 0) / batches.length);
  const memPeerOf = (c: Contender): Contender | undefined => fastestPeer(contenders, c, overall);
  const hasPeer = contenders.some((c) => c.family === "torch");
  console.log(`\nmedian generation over ${rounds} rounds, contenders interleaved, order rotated each round; load average at end (1, 5, 15 min): ${loadLine()}`);
  const header = ["engine", ...batches.map((B) => `B=${B} tok/s`), ...(hasPeer ? batches.map((B) => `B=${B} ÷ PyTorch`) : []), ...(tf ? batches.map((B) => `B=${B} ÷ TF.js`) : []), "peak RSS", ...(hasPeer ? ["RSS ÷ PyTorch"] : [])];
  const rows = contenders.map((c) => {
    const ours = c.family === "ort";
    const mine = peaks.get(c) ?? NaN;
    const memPeer = ours ? memPeerOf(c) : undefined;
    return [
      c.label,
      ...batches.map((B) => fmt(rate(c, B), fmtRate)),
      ...(hasPeer ? batches.map((B) => (ours && peerOf(c, B) ? fmtRatio(rate(c, B) / rate(peerOf(c, B)!, B)) : "")) : []),
      ...(tf ? batches.map((B) => (ours ? fmtRatio(rate(c, B) / rate(tf, B)) : "")) : []),
      fmt(mine, fmtBytes),
      ...(hasPeer ? [memPeer ? fmtRatio(mine / (peaks.get(memPeer) ?? NaN)) : ""] : []),
    ];
  });
  printTable(header, rows);
  console.log(`bench:sample took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (hasPeer) {
    for (const line of peerReports(contenders)) console.log(`peer ${line}`);
    const counts = [...new Set(contenders.filter((c) => c.family === "torch").map((c) => c.threads))];
    const won = counts.map((n) => {
      const probe = contenders.find((c) => c.family === "torch" && c.threads === n)!;
      const perBatch = batches.map((B) => `B=${B} ${peerOf(probe, B)!.label} ${fmt(rate(peerOf(probe, B)!, B), fmtRate)} tok/s`);
      return `${n}: ${perBatch.join(", ")}; memory against ${memPeerOf(probe)!.label}`;
    });
    console.log(`fastest PyTorch (the fair peer), per thread count and batch size — ${won.join(" | ")}`);
    console.log("ORT ÷ PyTorch compares equal thread counts, each against the fastest PyTorch for that batch size.");
    const ours = contenders.filter((c) => c.family === "ort" && peerOf(c, batches[0]!));
    const speed = ours.map((c) => {
      const got = batches.map((B) => rate(c, B) / rate(peerOf(c, B)!, B));
      return `${c.label} ${batches.map((B, i) => `B=${B} ${fmtRatio(got[i]!) || "—"}`).join(", ")} ${judge(got, TARGET, FLOOR, true)}`;
    });
    const memory = ours.map((c) => {
      const got = (peaks.get(c) ?? NaN) / (peaks.get(memPeerOf(c)!) ?? NaN);
      return `${c.label} ${fmtRatio(got) || "—"} ${judge([got], 0.75, 1.0, false)}`;
    });
    console.log(`targets: vs the fastest PyTorch — sampling tokens/s ≥ ${TARGET.toFixed(1)}x (floor ${FLOOR}x) at every batch size: ${speed.join("; ")} | memory, peak RSS ≤ 0.75x (floor 1.0x): ${memory.join("; ")}`);
  } else console.log("targets: not judged (no PyTorch peer)");
}

main().catch((e: unknown) => {
  console.error(`bench:sample: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
