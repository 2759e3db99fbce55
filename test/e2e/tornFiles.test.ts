import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { readJsonl } from "../../src/core/store/jsonl";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { tempDir } from "../helpers/paths";

test("torn files are named (file:line), repaired before appending, and a stage built from fewer records than its input stage wrote says so", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  await runRound({ workspace: ws, round: 1, events: recorder(), shouldStop: () => false });
  const store = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  const samplesFile = store.path(1, "samples-dpo.jsonl");
  const recorded = store.stage(1, "sample-dpo").counts!["samples"]!;
  const lines = readFileSync(samplesFile, "utf8").split("\n").filter(Boolean);
  assert.equal(lines.length, recorded);
  // The last sample is cut in half (a disk filled up, an editor saved half a line), and metrics.jsonl gets a torn tail.
  writeFileSync(samplesFile, lines.slice(0, -1).map((l) => l + "\n").join("") + lines.at(-1)!.slice(0, 40));
  const metricsFile = store.path(1, "metrics.jsonl");
  const metricLines = (await readJsonl(metricsFile)).records.length;
  appendFileSync(metricsFile, '{"kind":"train","stage":"sft","st');

  const events = recorder();
  await runRound({ workspace: ws, round: 1, restartFrom: "pairs", events, shouldStop: () => false });
  const warns = events.logs.filter((l) => l.startsWith("warn: "));
  assert.ok(warns.some((w) => w.includes(`samples-dpo.jsonl:${recorded}: the last line is cut off`)), warns.join("\n"));
  assert.ok(warns.some((w) => w.includes(`samples-dpo.jsonl holds ${recorded - 1} of the ${recorded} records that round 1's sample-dpo stage wrote`)), warns.join("\n"));
  assert.ok(warns.some((w) => w.includes(`metrics.jsonl:${metricLines + 1}: a cut-off last line`)), warns.join("\n"));
  const { tornTail } = await readJsonl(metricsFile);
  assert.equal(tornTail, false, "metrics.jsonl still ends in a torn line");
});

test("a torn line of a finished stage's metrics.jsonl is kept beside the file, and the warning names the lost step and the command that recomputes it", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  await runRound({ workspace: ws, round: 1, events: recorder(), shouldStop: () => false });
  const store = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  const metricsFile = store.path(1, "metrics.jsonl");
  const lines = readFileSync(metricsFile, "utf8").split("\n").filter(Boolean);
  // The SFT stage's last step record is torn (and the eval's summary after it never reached the disk).
  const last = lines.findLastIndex((l) => (JSON.parse(l) as { kind: string }).kind === "train");
  const record = JSON.parse(lines[last]!) as { stage: string; step: number };
  assert.equal(record.stage, "sft");
  const steps = store.stage(1, "sft").counts!["steps"]!;
  assert.equal(record.step, steps);
  const torn = lines[last]!.slice(0, -12);
  writeFileSync(metricsFile, lines.slice(0, last).map((l) => l + "\n").join("") + torn);

  const events = recorder();
  await runRound({ workspace: ws, round: 1, restartFrom: "eval", events, shouldStop: () => false });
  const warns = events.logs.filter((l) => l.startsWith("warn: "));
  const warn = warns.find((w) => w.includes(`metrics.jsonl:${last + 1}: a cut-off last line (${Buffer.byteLength(torn)} bytes`));
  assert.ok(warn, warns.join("\n"));
  assert.ok(warn.includes(`it was sft's record of step ${steps}`), warn);
  assert.ok(warn.includes(`now lacks sft step ${steps} of ${steps}`), warn);
  assert.ok(warn.includes(`selftrain round --run ${store.runId} --round 1 --from sft\` recomputes them`), warn);
  const kept = readdirSync(store.roundDir(1)).filter((n) => n.startsWith("metrics.jsonl.torn-"));
  assert.equal(kept.length, 1, "the torn bytes are kept beside the file");
  assert.ok(warn.includes(`kept in ${kept[0]}`), warn);
  assert.equal(readFileSync(join(store.roundDir(1), kept[0]!), "utf8"), torn);
  const { records, tornTail } = await readJsonl<{ kind: string }>(metricsFile);
  assert.equal(tornTail, false);
  assert.equal(records.at(-1)!.kind, "round", "the eval wrote its summary again");
});
