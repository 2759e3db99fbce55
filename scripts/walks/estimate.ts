// Where the "about N minutes" estimate is off (issue 28): for a workspace's newest run, each stage's measured wall
// time beside what the estimate said before the run (the reference machine's rates, scaled to the model) and what
// it says with the run's own measured rates, per stage.
//
//   npm run walk:estimate -- WORKSPACE
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { dataStats, modelParameters, ratesForSize, ratesFromRun, estimateSeconds, stageWork } from "../../src/core/selftrain/estimate";
import { readWorkspaceConfig, selftrainDir } from "../../src/core/selftrain/workspace";
import { parseConfig } from "../../src/core/selftrain/config";
import { RunStore } from "../../src/core/store/runStore";

async function main(): Promise<void> {
  const ws = resolve(process.argv[2] ?? ".");
  const dir = selftrainDir(ws);
  const id = RunStore.newest(dir);
  if (!id) throw new Error(`${ws}: no run to check the estimate against`);
  const store = await RunStore.open(dir, id);
  const snapshot = store.path(0, "selftrain-config.json");
  const c = existsSync(snapshot) ? parseConfig(JSON.parse(readFileSync(snapshot, "utf8")), snapshot) : readWorkspaceConfig(ws);
  const params = modelParameters(c, ws);
  const before = ratesForSize(params);
  const data = dataStats(c, ws, join(store.dir, "base"));
  const own = ratesFromRun(store.manifest, params, params, data.exampleTokens / Math.max(1, data.completionTokens));
  const rows: string[][] = [["round", "stage", "measured", "estimate before the run", "ratio", "with the run's rates", "ratio"]];
  let sums = [0, 0, 0];
  for (const w of stageWork(c, data, { warmup: true, round: true })) {
    const rec = store.manifest.rounds.find((r) => r.round === w.round)?.stages[w.stage];
    if (rec?.state !== "done" || !rec.startedAt || !rec.finishedAt) continue;
    const measured = (Date.parse(rec.finishedAt) - Date.parse(rec.startedAt)) / 1000;
    const a = estimateSeconds(w, before);
    const b = own ? estimateSeconds(w, own) : NaN;
    sums = [sums[0]! + measured, sums[1]! + a, sums[2]! + (Number.isFinite(b) ? b : 0)];
    rows.push([String(w.round), w.stage, `${measured.toFixed(0)} s`, `${a.toFixed(0)} s`, `${(a / measured).toFixed(2)}x`, Number.isFinite(b) ? `${b.toFixed(0)} s` : "–", Number.isFinite(b) ? `${(b / measured).toFixed(2)}x` : "–"]);
  }
  rows.push(["", "all", `${sums[0]!.toFixed(0)} s`, `${sums[1]!.toFixed(0)} s`, `${(sums[1]! / sums[0]!).toFixed(2)}x`, own ? `${sums[2]!.toFixed(0)} s` : "–", own ? `${(sums[2]! / sums[0]!).toFixed(2)}x` : "–"]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`run ${id} in ${ws}: ${(params / 1e6).toFixed(1)}M parameters; ${data.trainQuestions} train and ${data.evalQuestions} eval questions, ${data.exampleTokens.toFixed(0)} tokens an example, ${data.completionTokens.toFixed(0)} of them the rationale`);
  console.log(`before: ${before.basis} (train ${before.trainTokensPerSecond.toFixed(0)} tokens/s, sample ${before.sampleTokensPerSecond.toFixed(0)} tokens/s)`);
  if (own) console.log(`the run's: train ${own.trainTokensPerSecond.toFixed(0)} tokens/s, sample ${own.sampleTokensPerSecond.toFixed(0)} tokens/s`);
  for (const r of rows) console.log(`| ${r.map((x, i) => x.padEnd(widths[i]!)).join(" | ")} |`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
