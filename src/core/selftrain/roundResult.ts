import { existsSync } from "node:fs";
import { RunStore } from "../store/runStore";
import { readJsonl } from "../store/jsonl";
import { readMetricRecord, type RoundSummaryRecord } from "../../shared/metricRecord";
import { selftrainDir } from "./workspace";
import type { RoundResult } from "../../shared/roundResult";

async function summary(store: RunStore, round: number): Promise<RoundSummaryRecord | null> {
  if (round < 0) return null;
  const file = store.path(round, "metrics.jsonl");
  if (!existsSync(file)) return null;
  const records = (await readJsonl<unknown>(file)).records.map((r) => readMetricRecord(r, store.runId));
  return records.filter((r): r is RoundSummaryRecord => r?.kind === "round").at(-1) ?? null;
}

export async function roundResult(workspace: string, runId: string, round: number): Promise<RoundResult> {
  const store = await RunStore.open(selftrainDir(workspace), runId);
  const now = await summary(store, round);
  const before = await summary(store, round - 1);
  const split = typeof now?.testAccuracy === "number" ? "test" : "dev";
  const pick = (s: RoundSummaryRecord | null): number | null => {
    const v = s?.[`${split}Accuracy`];
    return typeof v === "number" ? v : null;
  };
  return { split, accuracy: pick(now), previous: pick(before) };
}
