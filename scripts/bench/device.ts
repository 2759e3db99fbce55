/**
 * The measuring half of scripts/gpu/device-bench.sh (run that, not this): one model's SFT step, DPO step and
 * batch-64 sampling on ORT webgpu, ORT cpu on all cores and the PyTorch peer on CUDA, each in a process of its
 * own (contenderProcess.ts), taking turns round by round, with the ratios ORT webgpu ÷ ORT cpu (goal ≥ 5x) and
 * ORT webgpu ÷ PyTorch CUDA (goal ≥ 0.5x). --cpu-only is the dry run for a machine without a GPU: ORT cpu and
 * PyTorch cpu, all cores, at the reduced size unless --preset says otherwise.
 *
 *   tsx scripts/bench/device.ts [--cpu-only] [--preset smollm2-135m|reduced] [--rounds 3] [--python python3]
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { tinyConfig, type ModelConfig } from "../../src/core/model/config";
import { ContenderProcess, peerUnavailable, type TimedCommand } from "./contenderProcess";
import { benchConfig, COMMON_OPTIONS, describeModel, fmtBytes, fmtRate, fmtRatio, loadLine, median, metOrMissed, printTable, rotated, type CommonValues } from "./contenders";

const { values } = parseArgs({
  options: {
    "cpu-only": { type: "boolean", default: false },
    preset: { type: "string", default: "" },
    python: { type: "string", default: "python3" },
    rounds: { type: "string", default: "" },
    threads: { type: "string", default: String(availableParallelism()) },
    batch: { type: "string", default: "8" },
    length: { type: "string", default: "128" },
    "sample-batch": { type: "string", default: "64" },
    prompt: { type: "string", default: "32" },
    new: { type: "string", default: "32" },
  },
});
const cpuOnly = values["cpu-only"];
const preset = values.preset || (cpuOnly ? "reduced" : "smollm2-135m");
const threads = Number(values.threads);
const B = Number(values.batch);
const T = Number(values.length);
const SB = Number(values["sample-batch"]);
const P = Number(values.prompt);
const N = Number(values.new);
const rounds = Number(values.rounds || (cpuOnly ? 2 : 3));
const OPS = ["sft", "dpo", "sample"] as const;
type Op = (typeof OPS)[number];

/** The reduced size of the dry run: SmolLM2-135M's head layout and vocabulary kind, 4 layers of width 256. */
function config(): ModelConfig {
  if (preset === "reduced") return tinyConfig(8192, { hidden_size: 256, intermediate_size: 704, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256 });
  if (preset !== "smollm2-135m") throw new Error(`--preset must be smollm2-135m or reduced, not ${preset}`);
  return benchConfig({ ...defaults(), preset } as CommonValues);
}

function defaults(): Record<string, string> {
  return Object.fromEntries(Object.entries(COMMON_OPTIONS).map(([k, o]) => [k, o.default]));
}

interface Runner {
  label: string;
  kind: "webgpu" | "ort-cpu" | "torch";
  open(): Promise<ContenderProcess>;
  proc?: ContenderProcess;
  times: Record<Op, number[]>;
  peak: number;
  failed?: string;
}

const tokens = (op: Op): number => (op === "sample" ? SB * N : B * T);
const command = (op: Op): TimedCommand => (op === "sample" ? { op, batch: SB, prompt: P, new: N, reps: 1, temperature: 0.7 } : { op, batch: B, length: T, reps: 1 });
const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));

async function main(): Promise<void> {
  const started = performance.now();
  const c = config();
  console.log(`device-bench${cpuOnly ? " --cpu-only (dry run)" : ""} — model: ${describeModel(c)}`);
  console.log(`ops: SFT and DPO step of ${B} × ${T} tokens (backward + clipped AdamW), sampling at batch ${SB} (prompt ${P}, ${N} new tokens); ${rounds} rounds, contenders take turns, order rotated each round`);
  console.log(`load average at start (1, 5, 15 min): ${loadLine()}; CPU threads used: ${threads}`);
  const runners: Runner[] = [];
  const add = (label: string, kind: Runner["kind"], open: () => Promise<ContenderProcess>): void => {
    runners.push({ label, kind, open, times: { sft: [], dpo: [], sample: [] }, peak: 0 });
  };
  if (!cpuOnly) add("ORT webgpu", "webgpu", () => ContenderProcess.ours({ family: "ort", config: c, threads, executionProvider: "webgpu" }));
  add(`ORT cpu ${threads} threads`, "ort-cpu", () => ContenderProcess.ours({ family: "ort", config: c, threads }));
  const device = cpuOnly ? "cpu" : "cuda";
  const missing = peerUnavailable(values.python, device);
  if (missing) console.log(missing);
  else add(`PyTorch ${device === "cuda" ? "CUDA" : `cpu ${threads} threads`}`, "torch", () => ContenderProcess.torch(values.python, c, threads, device));

  // Every process is kept for the run: a GPU machine has the memory, and the dry run's model is small.
  for (const r of runners) {
    const t0 = performance.now();
    try {
      r.proc = await r.open();
      // Warm-up, untimed: builds sessions, compiles shaders / kernels, settles allocators.
      for (const op of OPS) await r.proc.time(op === "sample" ? { ...(command(op) as Extract<TimedCommand, { op: "sample" }>), new: 2 } : command(op));
      console.log(`${r.label}: started and warmed up in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.proc.version})`);
    } catch (e) {
      r.failed = why(e);
      console.log(`${r.label}: failed to start — ${r.failed}`);
      await r.proc?.close();
      delete r.proc;
    }
  }
  const live = runners.filter((r) => !r.failed);
  for (let round = 0; round < rounds; round++) {
    for (const r of rotated(live, round)) {
      if (r.failed) continue;
      try {
        for (const op of OPS) r.times[op].push(...(await r.proc!.time(command(op))));
      } catch (e) {
        r.failed = why(e);
      }
    }
    process.stderr.write(`\rround ${round + 1}/${rounds} (load ${loadLine()}, ${((performance.now() - started) / 1000).toFixed(0)} s)   `);
  }
  process.stderr.write("\n");
  for (const r of runners) {
    if (r.proc) {
      r.peak = await r.proc.peakBytes().catch(() => 0);
      await r.proc.close();
    }
    if (r.failed && r.times.sft.length) console.log(`${r.label}: failed — ${r.failed}`);
  }

  const rate = (r: Runner | undefined, op: Op): number => (r && r.times[op].length ? tokens(op) / median(r.times[op]) : NaN);
  const gpu = runners.find((r) => r.kind === "webgpu");
  const cpu = runners.find((r) => r.kind === "ort-cpu");
  const torch = runners.find((r) => r.kind === "torch");
  const ours = gpu ?? cpu;
  console.log(`\nmedian over ${rounds} rounds; load average at end (1, 5, 15 min): ${loadLine()}`);
  const vsCpu = gpu ? OPS.map((op) => `${op.toUpperCase()} ÷ ORT cpu`) : [];
  const vsTorch = torch ? OPS.map((op) => `${op.toUpperCase()} ÷ PyTorch`) : [];
  const fmt = (x: number): string => (Number.isFinite(x) ? fmtRate(x) : "—");
  printTable(
    ["engine", "SFT tok/s", "DPO tok/s", `sample B=${SB} tok/s`, ...vsCpu, ...vsTorch, "peak RSS"],
    runners.map((r) => [
      r.label,
      ...OPS.map((op) => fmt(rate(r, op))),
      ...(gpu ? OPS.map((op) => (r === gpu ? fmtRatio(rate(r, op) / rate(cpu, op)) : "")) : []),
      ...(torch ? OPS.map((op) => (r === ours ? fmtRatio(rate(r, op) / rate(torch, op)) : "")) : []),
      r.peak ? fmtBytes(r.peak) : "—",
    ]),
  );
  console.log(`device-bench took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (!gpu) {
    const got = torch && cpu ? OPS.map((op) => `${op.toUpperCase()} ${fmtRatio(rate(cpu, op) / rate(torch, op)) || "—"}`).join(", ") : "no PyTorch";
    console.log(`goal: ORT webgpu ≥ 5x ORT cpu (all cores) and ≥ 0.5x PyTorch CUDA — not judged (dry run without a GPU; ORT cpu ÷ PyTorch cpu: ${got})`);
    return;
  }
  const a = OPS.map((op) => rate(gpu, op) / rate(cpu, op));
  const partA = `ORT webgpu ÷ ORT cpu ${OPS.map((op, i) => `${op.toUpperCase()} ${fmtRatio(a[i]!) || "—"}`).join(", ")} (≥ 5x) ${metOrMissed(a.every((x) => x >= 5))}`;
  let partB = "PyTorch CUDA: not available, not judged";
  if (torch) {
    const b = OPS.map((op) => rate(gpu, op) / rate(torch, op));
    partB = `ORT webgpu ÷ PyTorch CUDA ${OPS.map((op, i) => `${op.toUpperCase()} ${fmtRatio(b[i]!) || "—"}`).join(", ")} (≥ 0.5x) ${metOrMissed(b.every((x) => x >= 0.5))}`;
  }
  console.log(`goal: ${partA}; ${partB}`);
}

main().catch((e: unknown) => {
  console.error(`device-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
