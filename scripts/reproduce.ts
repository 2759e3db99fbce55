// The paper's finding in miniature (issue 8): after warm-up SFT, plain self-training (ST) and DPO-augmented
// self-training (DPO-ST), 3 iterations each from the same warm-up checkpoint, same seeds and budgets, on the
// synthetic task; repeated over seeds. Prints the paper-style table (mean ± sample standard deviation over seeds)
// and writes every run: OUT/seed-<s>/ is a workspace the extension opens, its dashboard showing ST and DPO-ST
// side by side.
//
//   npm run bench:reproduce [-- --seeds 0,1,2 --iterations 3 --parallel 2 --out reproduction]
//
// Each seed runs in its own processes (the CLI, whose engine process trains), `--parallel` seeds at a time with
// one ONNX Runtime thread each: on 2 cores, two 1-thread processes do more work than one 2-thread process.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeSyntheticSet } from "../src/core/data/syntheticFiles";
import { initWorkspace, selftrainDir } from "../src/core/selftrain/workspace";
import { RunStore } from "../src/core/store/runStore";
import { readJsonl } from "../src/core/store/jsonl";
import type { MetricRecord } from "../src/core/selftrain/runEvents";

/**
 * The small-model settings, tuned on the dev split only (docs/reproduction.md says how and why); everything
 * else is method.md's default.
 */
export const REPRO_SETTINGS = {
  mode: "dpo-st",
  data: { devSize: 200, testSize: 0, maxTrainQuestions: 0 },
  model: { vocabSize: 384, hiddenSize: 128, intermediateSize: 352, layers: 4, heads: 4, kvHeads: 2, maxPositions: 320 },
  engine: { name: "onnxruntime", threads: 1 },
  warmup: { epochs: 0, steps: 600, batchSize: 32, microBatchSize: 32, learningRate: 3e-3, warmupRatio: 0.05, maxLength: 256 },
  sampling: { dpoSamples: 5, sftSamples: 3, temperature: 0.7, topP: 1, maxNewTokens: 160, batchSize: 128 },
  pairs: { maxPerQuestion: 3 },
  dpo: { steps: 60, batchSize: 32, microBatchSize: 32, learningRate: 1e-4, warmupRatio: 0.1, maxLength: 256, beta: 0.1 },
  sft: { epochs: 0, steps: 600, batchSize: 32, microBatchSize: 32, learningRate: 3e-3, warmupRatio: 0.05, maxLength: 256 },
  eval: { passSamples: 4, passK: 4, maxQuestions: 0 },
};

/** The task: the same problems for every seed, so the spread over seeds is the training's, not the data's. */
const DATA = { seed: 2026, train: 1500, test: 500, maxSteps: 2 };

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const root = resolve(__dirname, "..");
const cli = join(root, "dist", "cli.js");

/** One CLI command in a workspace; its output goes to the seed's log, a failure stops everything. */
function run(ws: string, args: string[], log: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args, "-w", ws], { stdio: ["ignore", "pipe", "pipe"] });
    const out: string[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d.toString()));
    child.stderr.on("data", (d: Buffer) => out.push(d.toString()));
    child.on("exit", (code) => {
      log.push(`$ selftrain ${args.join(" ")}\n${out.join("")}`);
      if (code === 0) done();
      else fail(new Error(`selftrain ${args.join(" ")} in ${ws} failed (exit ${code}):\n${out.join("").split("\n").slice(-15).join("\n")}`));
    });
  });
}

interface SeedResult {
  seed: number;
  /** Round summaries by run mode, index = iteration (0 = warm-up). */
  rounds: Record<"st" | "dpo-st", MetricRecord[]>;
  wallMs: Record<"warmup" | "st" | "dpo-st", number>;
}

async function summaries(store: RunStore): Promise<MetricRecord[]> {
  const out: MetricRecord[] = [];
  for (const r of store.manifest.rounds.map((x) => x.round).sort((a, b) => a - b)) {
    const file = store.path(r, "metrics.jsonl");
    if (!existsSync(file)) continue;
    const summary = (await readJsonl<MetricRecord>(file)).records.filter((m) => m.kind === "round").at(-1);
    if (summary) out[r] = summary;
  }
  return out;
}

async function runSeed(out: string, seed: number, iterations: number, dataDir: string): Promise<SeedResult> {
  const ws = join(out, `seed-${seed}`);
  mkdirSync(ws, { recursive: true });
  const log: string[] = [];
  const started = Date.now();
  await initWorkspace(ws, { train: join(dataDir, "train.jsonl"), test: join(dataDir, "test.jsonl"), overrides: { ...REPRO_SETTINGS, seed }, force: true });
  // Resumable: a run already in the workspace continues where it stopped.
  const runIds = (): string[] => RunStore.list(selftrainDir(ws));
  if (runIds().length === 0) await run(ws, ["warmup", "--new-run", "--mode", "dpo-st"], log);
  else await run(ws, ["warmup", "--run", runIds()[0]!], log);
  const warmupMs = Date.now() - started;
  const dpoRun = runIds()[0]!;
  if (runIds().length < 2) await run(ws, ["round", "--fork", dpoRun, "--mode", "st", "--round", "1"], log);
  const stRun = runIds()[1]!;
  const timed: Record<"st" | "dpo-st", number> = { st: 0, "dpo-st": 0 };
  for (const [mode, runId] of [["st", stRun], ["dpo-st", dpoRun]] as const) {
    const t0 = Date.now();
    for (let i = 1; i <= iterations; i++) await run(ws, ["round", "--run", runId, "--round", String(i)], log);
    timed[mode] = Date.now() - t0;
  }
  writeFileSync(join(ws, "reproduce.log"), log.join("\n"));
  return {
    seed,
    rounds: { st: await summaries(await RunStore.open(selftrainDir(ws), stRun)), "dpo-st": await summaries(await RunStore.open(selftrainDir(ws), dpoRun)) },
    wallMs: { warmup: warmupMs, ...timed },
  };
}

function meanSd(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd };
}

function cell(values: Array<number | null | undefined>, pct: boolean, digits = 1): string {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  if (v.length === 0) return "–";
  const { mean, sd } = meanSd(v.map((x) => (pct ? 100 * x : x)));
  return v.length > 1 ? `${mean.toFixed(digits)} ± ${sd.toFixed(digits)}` : mean.toFixed(digits);
}

/** The paper-style table: one row per method and iteration, means ± standard deviations over seeds. */
export function table(results: readonly SeedResult[], iterations: number): string {
  const rows: string[][] = [["method", "iteration", "test acc % (greedy)", "dev acc %", "pass@k test %", "pseudo-labels", "pairs", "distinct / question", "wall time (min)"]];
  const at = (mode: "st" | "dpo-st", i: number, key: string): Array<number | null> => results.map((r) => (r.rounds[mode][i]?.[key] as number | null | undefined) ?? null);
  const minutes = (mode: "st" | "dpo-st", i: number): Array<number | null> => at(mode, i, "wallMs").map((ms) => (ms === null ? null : ms / 60_000));
  rows.push(["SFT (warm-up)", "0", cell(at("dpo-st", 0, "accuracy/test"), true), cell(at("dpo-st", 0, "accuracy/dev"), true), cell(at("dpo-st", 0, "pass@k/test"), true), "–", "–", "–", cell(minutes("dpo-st", 0), false)]);
  for (const mode of ["st", "dpo-st"] as const) {
    for (let i = 1; i <= iterations; i++) {
      rows.push([mode === "st" ? "ST" : "DPO-ST", String(i), cell(at(mode, i, "accuracy/test"), true), cell(at(mode, i, "accuracy/dev"), true), cell(at(mode, i, "pass@k/test"), true),
        cell(at(mode, i, "pseudoLabels"), false, 0), mode === "st" ? "–" : cell(at(mode, i, "pairs"), false, 0), cell(at(mode, i, "distinctPerQuestion"), false, 2), cell(minutes(mode, i), false)]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => `| ${r.map((x, c) => x.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

async function main(): Promise<void> {
  const seeds = option("seeds", "0,1,2").split(",").map(Number);
  const iterations = Number(option("iterations", "3"));
  const parallel = Math.max(1, Number(option("parallel", "2")));
  const out = resolve(option("out", "reproduction"));
  if (!existsSync(cli)) throw new Error("dist/cli.js is missing: npm run build");
  const started = Date.now();
  const dataDir = join(out, "data");
  writeSyntheticSet(dataDir, DATA.seed, DATA.train, 0, DATA.test, DATA.maxSteps);
  console.log(`synthetic task (seed ${DATA.seed}, up to ${DATA.maxSteps}-step problems): ${DATA.train} train (${REPRO_SETTINGS.data.devSize} of them dev), ${DATA.test} test → ${dataDir}`);
  console.log(`seeds ${seeds.join(", ")}, ${iterations} iterations of ST and of DPO-ST from each seed's warm-up, ${parallel} seed(s) at a time`);
  const results: SeedResult[] = [];
  const queue = [...seeds];
  await Promise.all(Array.from({ length: Math.min(parallel, seeds.length) }, async () => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
      const t0 = Date.now();
      const r = await runSeed(out, s, iterations, dataDir);
      results.push(r);
      const acc = (mode: "st" | "dpo-st"): string => r.rounds[mode].map((m) => (typeof m?.["accuracy/test"] === "number" ? (100 * (m["accuracy/test"] as number)).toFixed(1) : "–")).join(" → ");
      console.log(`seed ${s} done in ${((Date.now() - t0) / 60_000).toFixed(1)} min: test acc ST ${acc("st")}; DPO-ST ${acc("dpo-st")}`);
    }
  }));
  results.sort((a, b) => a.seed - b.seed);
  const text = table(results, iterations);
  const total = (Date.now() - started) / 60_000;
  console.log(`\n${text}\n\n${seeds.length} seed(s); mean ± standard deviation over seeds; wall time ${total.toFixed(1)} min on this machine`);
  writeFileSync(join(out, "results.md"), `${text}\n\nSeeds: ${seeds.join(", ")}. Total wall time ${total.toFixed(1)} min.\n`);
  writeFileSync(join(out, "results.json"), JSON.stringify({ settings: REPRO_SETTINGS, data: DATA, seeds, iterations, totalMinutes: total, results }, null, 2));
  console.log(`runs: ${out}/seed-*/ (open one in VS Code: the dashboard shows ST and DPO-ST side by side); results.md, results.json`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
