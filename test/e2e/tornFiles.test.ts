import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { runRound, selftrainDir } from "../../src/core/selftrain/session";
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
