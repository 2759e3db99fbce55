import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { inspectDataset, formatDatasetReport } from "../core/data/datasetReport";
import { initWorkspace, selftrainDir } from "../core/selftrain/session";
import { RunStore } from "../core/store/runStore";
import { readJsonl } from "../core/store/jsonl";
import { readMetricRecord, type RoundSummaryRecord } from "../shared/metricRecord";
import { writeSyntheticSet } from "../core/data/syntheticFiles";
import { viaWorker } from "./runCommands";
import { parse, intOption } from "./args";

const DEMO_USAGE = `
selftrain demo [--dir DIR] [--seed N]

The project's main job, end to end on a CPU in under 10 minutes: generates a synthetic GSM8K-format task
(one-step problems, so a model trained from scratch learns in minutes) into DIR (default ./selftrain-demo), checks it, writes DIR/.selftrain/config.json for a
small model trained from scratch, runs the warm-up SFT and one round of DPO-augmented self-training, and
prints the per-round table. DIR is then a workspace the extension opens.
`;

/** Settings sized for the demo's time budget on 2 cores; everything else is method.md's default. */
const DEMO_SETTINGS = {
  data: { devSize: 100, testSize: 200 },
  model: { vocabSize: 384, hiddenSize: 64, intermediateSize: 176, layers: 2, heads: 4, kvHeads: 2, maxPositions: 256 },
  warmup: { epochs: 0, steps: 200, batchSize: 32, microBatchSize: 32, learningRate: 5e-3, warmupRatio: 0.05, maxLength: 200 },
  sampling: { maxNewTokens: 100, batchSize: 128 },
  dpo: { steps: 30, batchSize: 16, microBatchSize: 16, learningRate: 2e-4, maxLength: 200 },
  sft: { epochs: 0, steps: 200, batchSize: 32, microBatchSize: 32, learningRate: 5e-3, warmupRatio: 0.05, maxLength: 200 },
  eval: { passSamples: 4, passK: 4 },
};

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { dir: { type: "string" }, seed: { type: "string" } }, DEMO_USAGE);
  const dir = resolve(typeof values["dir"] === "string" ? values["dir"] : "selftrain-demo");
  const seed = intOption(values, "seed", 0);
  const started = Date.now();

  const set = writeSyntheticSet(join(dir, "data"), seed, 1000, 0, 200, 1);
  console.log(`synthetic task (seed ${seed}, one-step problems): ${set.counts.train} train, ${set.counts.test} test → ${set.dir}`);
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
  console.log(`\nrun folder: ${store.dir}\ndemo finished in ${((Date.now() - started) / 60000).toFixed(1)} min`);
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
