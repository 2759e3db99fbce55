/**
 * `npm run bench:train`: tokens/s and peak memory of an SFT step and of a DPO step (chosen + rejected), each with
 * its AdamW step, for one model on the ORT engine (1 and 2 threads), the TensorFlow.js engine and the PyTorch
 * peer (Debian's python3-torch 1.13 and .venv's PyTorch 2.x, each in every thread setup that applies, 1 and 2
 * threads), with the ratios ORT ÷ PyTorch (against the fastest PyTorch at the same thread count, per step kind)
 * and ORT ÷ TF.js, from one run, and a last line `targets: …` with issue 22's targets and floors met or missed.
 *
 * Every contender runs each kind of step in a child process of its own (contenderProcess.ts), which reports its
 * own peak resident set (VmHWM) at the end: the peak RSS of an SFT step is that of a process that has done SFT
 * steps only, likewise DPO. The contenders take turns round by round (order rotated each round) so that load
 * from elsewhere hits all of them alike; each rate is the median step time over all rounds. At the 135M preset
 * each process lives for its turn only (--lifetime turn, see contenders.ts), so that one model at a time is in
 * memory. Not part of `npm test`.
 *
 *   npm run bench:train [-- --rounds 8 --steps 4 --tf-steps 1 --spin on|off|both --hidden 128 --layers 4]
 *                       [-- --python /usr/bin/python3,.venv/bin/python --peer-setups blas,torch,openmp]
 *   npm run bench:train -- --preset smollm2-135m     (SmolLM2-135M's shape, 8 × 128 tokens, 2 rounds of 1 step)
 */
import { parseArgs } from "node:util";
import type { ContenderProcess } from "./contenderProcess";
import { COMMON_OPTIONS, benchConfig, describeModel, fastestPeer, fmtBytes, fmtRate, fmtRatio, judge, lineup, loadLine, median, pause, peerReports, presetOf, printTable, rotated, type Contender } from "./contenders";

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    rounds: { type: "string", default: "" },
    steps: { type: "string", default: "" },
    warmup: { type: "string", default: "" },
    "tf-steps": { type: "string", default: "1" },
    batch: { type: "string", default: "" },
    length: { type: "string", default: "" },
  },
});
const big = presetOf(values) === "smollm2-135m";
const rounds = Number(values.rounds || (big ? 2 : 8));
const stepsPerRound = Number(values.steps || (big ? 1 : 4));
const B = Number(values.batch || (big ? 8 : 16));
const T = Number(values.length || (big ? 128 : 64));
const config = benchConfig(values);
const KINDS = ["sft", "dpo"] as const;
type Kind = (typeof KINDS)[number];

/** One contender doing one kind of step, in its own process. */
interface Unit {
  c: Contender;
  kind: Kind;
  proc?: ContenderProcess;
  times: number[];
  peak: number;
  failed?: string;
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`bench:train — model: ${describeModel(config)}`);
  console.log(`step: ${B} × ${T} tokens (DPO: ${B / 2} chosen + ${B / 2} rejected rows), backward + clipped AdamW; tokens/s counts every position (B × T) per step`);
  console.log(`load average at start (1, 5, 15 min): ${loadLine()}`);
  const { contenders, notes, lifetime } = lineup(config, values);
  for (const n of notes) console.log(n);
  const warmup = Number(values.warmup || (lifetime === "turn" ? 1 : 2));
  console.log(`each contender × step kind in its own process (${lifetime === "turn" ? "started for each turn and ended after it: one model in memory at a time" : "all kept for the run"}); ${warmup} untimed warm-up step(s) per process`);
  const units: Unit[] = contenders.flatMap((c) => KINDS.map((kind) => ({ c, kind, times: [], peak: 0 })));
  const reps = (u: Unit): number => (u.c.family === "tfjs" ? Number(values["tf-steps"]) : stepsPerRound);
  const cmd = (u: Unit, n: number) => ({ op: u.kind, batch: B, length: T, reps: n }) as const;

  const open = async (u: Unit): Promise<boolean> => {
    try {
      u.proc = await u.c.open();
      // Warm-up, untimed: builds and opens sessions, compiles kernels, settles allocators.
      if (warmup > 0) await u.proc.time(cmd(u, warmup));
      return true;
    } catch (e) {
      u.failed = e instanceof Error ? e.message : String(e);
      await u.proc?.close();
      delete u.proc;
      return false;
    }
  };
  const close = async (u: Unit): Promise<void> => {
    if (!u.proc) return;
    try {
      u.peak = Math.max(u.peak, await u.proc.peakBytes());
    } catch (e) {
      u.failed ??= e instanceof Error ? e.message : String(e);
    }
    await u.proc.close();
    delete u.proc;
  };

  try {
    if (lifetime === "run") for (const u of units) await open(u);
    for (let r = 0; r < rounds; r++) {
      for (const u of rotated(units, r)) {
        if (u.failed) continue;
        if (lifetime === "turn" && !(await open(u))) continue;
        try {
          u.times.push(...(await u.proc!.time(cmd(u, reps(u)))));
        } catch (e) {
          u.failed = e instanceof Error ? e.message : String(e);
        }
        if (lifetime === "turn") {
          await close(u);
          process.stderr.write(`\rround ${r + 1}/${rounds}: ${u.c.label} ${u.kind.toUpperCase()} done (load ${loadLine()}, ${((performance.now() - started) / 1000).toFixed(0)} s)   `);
        }
        // Lets the last engine's idle threads stop spinning before the next one starts.
        await pause(Number(values.gap));
      }
      process.stderr.write(`\rround ${r + 1}/${rounds} (load ${loadLine()}, ${((performance.now() - started) / 1000).toFixed(0)} s)   `);
    }
    process.stderr.write("\n");
  } finally {
    for (const u of units) await close(u);
  }
  for (const u of units) if (u.failed) console.log(`${u.c.label} ${u.kind.toUpperCase()}: failed — ${u.failed}`);

  const unit = (c: Contender, kind: Kind): Unit => units.find((u) => u.c === c && u.kind === kind)!;
  const ok = (c: Contender, kind: Kind): boolean => unit(c, kind).times.length > 0;
  const rate = (c: Contender, kind: Kind): number => (ok(c, kind) ? (B * T) / median(unit(c, kind).times) : NaN);
  const best = (c: Contender, kind: Kind): number => (ok(c, kind) ? (B * T) / Math.min(...unit(c, kind).times) : NaN);
  const peak = (c: Contender, kind: Kind): number => (unit(c, kind).peak > 0 ? unit(c, kind).peak : NaN);
  const tf = contenders.find((c) => c.family === "tfjs");
  // The fair peer: per step kind, the fastest PyTorch (build and thread setup) at the same thread count.
  const peerOf = (c: Contender, kind: Kind): Contender | undefined => fastestPeer(contenders, c, (p) => rate(p, kind));
  const hasPeer = contenders.some((c) => c.family === "torch");
  console.log(`\nmedian step over ${rounds} rounds (${stepsPerRound} step(s) per round each; TF.js ${values["tf-steps"]}), contenders interleaved, order rotated each round; load average at end (1, 5, 15 min): ${loadLine()}`);
  console.log("peak RSS: the contender process's own VmHWM (model, optimiser state, sessions, runtime), one process per step kind");
  const fmt = (x: number, f: (x: number) => string): string => (Number.isFinite(x) ? f(x) : "—");
  const header = ["engine", "SFT tok/s", "DPO tok/s", ...(hasPeer ? ["SFT ÷ PyTorch", "DPO ÷ PyTorch"] : []), ...(tf ? ["SFT ÷ TF.js", "DPO ÷ TF.js"] : []), "SFT peak RSS", "DPO peak RSS", ...(hasPeer ? ["SFT RSS ÷ PyTorch", "DPO RSS ÷ PyTorch"] : []), "best SFT / DPO tok/s"];
  const rows = contenders.map((c) => {
    const p = (k: Kind): Contender | undefined => (c.family === "ort" ? peerOf(c, k) : undefined);
    const vsPeer = hasPeer ? KINDS.map((k) => (p(k) ? fmtRatio(rate(c, k) / rate(p(k)!, k)) : "")) : [];
    const vsTf = tf ? KINDS.map((k) => (c.family === "ort" ? fmtRatio(rate(c, k) / rate(tf, k)) : "")) : [];
    const memVsPeer = hasPeer ? KINDS.map((k) => (p(k) ? fmtRatio(peak(c, k) / peak(p(k)!, k)) : "")) : [];
    return [c.label, fmt(rate(c, "sft"), fmtRate), fmt(rate(c, "dpo"), fmtRate), ...vsPeer, ...vsTf, fmt(peak(c, "sft"), fmtBytes), fmt(peak(c, "dpo"), fmtBytes), ...memVsPeer, `${fmt(best(c, "sft"), fmtRate)} / ${fmt(best(c, "dpo"), fmtRate)}`];
  });
  printTable(header, rows);
  console.log(`bench:train took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (hasPeer) {
    for (const line of peerReports(contenders)) console.log(`peer ${line}`);
    const counts = [...new Set(contenders.filter((c) => c.family === "torch").map((c) => c.threads))];
    const won = counts.map((n) => {
      const probe = contenders.find((c) => c.family === "torch" && c.threads === n)!;
      return `${n}: ${KINDS.map((k) => {
        const p = peerOf(probe, k)!;
        return `${k.toUpperCase()} ${p.label} ${fmt(rate(p, k), fmtRate)} tok/s`;
      }).join(", ")}`;
    });
    console.log(`fastest PyTorch (the fair peer), per thread count and step kind — ${won.join("; ")}`);
    console.log("ORT ÷ PyTorch compares equal thread counts, each against the fastest PyTorch for that step kind (memory: that same process).");
    const ours = contenders.filter((c) => c.family === "ort" && KINDS.every((k) => peerOf(c, k)));
    const memory = ours.map((c) => {
      const got = KINDS.map((k) => peak(c, k) / peak(peerOf(c, k)!, k));
      return `${c.label} SFT ${fmtRatio(got[0]!) || "—"} DPO ${fmtRatio(got[1]!) || "—"} ${judge(got, 0.75, 1.0, false)}`;
    });
    const speed = ours.map((c) => {
      // Issue 22: target 1.5x at every thread count; floor 1.0x on one thread, 1.3x on two (and more).
      const floor = c.threads === 1 ? 1.0 : 1.3;
      const got = KINDS.map((k) => rate(c, k) / rate(peerOf(c, k)!, k));
      return `${c.label} SFT ${fmtRatio(got[0]!) || "—"} DPO ${fmtRatio(got[1]!) || "—"} (floor ${floor.toFixed(1)}x) ${judge(got, 1.5, floor, true)}`;
    });
    console.log(`targets: vs the fastest PyTorch — speed, tokens/s ≥ 1.5x (floor 1.0x on 1 thread, 1.3x on 2): ${speed.join("; ")} | memory, peak RSS ≤ 0.75x (floor 1.0x): ${memory.join("; ")}`);
  } else console.log("targets: not judged (no PyTorch peer)");
}

main().catch((e: unknown) => {
  console.error(`bench:train: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
