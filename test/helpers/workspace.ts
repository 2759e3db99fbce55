import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSyntheticTask, toJsonlRecord } from "../../src/core/data/synthetic";
import { initWorkspace, selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import type { RunnerEvents } from "../../src/core/selftrain/runEvents";

/** A workspace with a small synthetic task and a configuration that runs a whole round in seconds. */
export async function tinyWorkspace(dir: string, seed = 3): Promise<string> {
  mkdirSync(join(dir, "data"), { recursive: true });
  const ex = generateSyntheticTask({ seed, count: 50, maxSteps: 2 });
  writeFileSync(join(dir, "data/train.jsonl"), ex.slice(0, 44).map(toJsonlRecord).join("\n") + "\n");
  writeFileSync(join(dir, "data/test.jsonl"), ex.slice(44).map(toJsonlRecord).join("\n") + "\n");
  await initWorkspace(dir, {
    train: "data/train.jsonl",
    test: "data/test.jsonl",
    overrides: {
      seed,
      data: { devSize: 6 },
      model: { vocabSize: 300, hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 2, kvHeads: 1, maxPositions: 256 },
      warmup: { epochs: 0, steps: 12, batchSize: 16, microBatchSize: 16, learningRate: 1e-2, maxLength: 160 },
      sampling: { dpoSamples: 4, sftSamples: 3, maxNewTokens: 40, batchSize: 64 },
      dpo: { steps: 4, batchSize: 8, microBatchSize: 8, learningRate: 1e-3, maxLength: 160 },
      sft: { epochs: 0, steps: 12, batchSize: 16, microBatchSize: 16, learningRate: 1e-2, maxLength: 160 },
      eval: { passSamples: 2, passK: 2, maxQuestions: 6 },
    },
  });
  return dir;
}

/** Events collected in memory. */
export function recorder(): RunnerEvents & { stages: string[]; logs: string[] } {
  const stages: string[] = [];
  const logs: string[] = [];
  return {
    stages,
    logs,
    stage: (e) => stages.push(`${e.round}:${e.stage}:${e.state}`),
    progress: () => undefined,
    metric: () => undefined,
    log: (e) => logs.push(`${e.level}: ${e.message}`),
  };
}

/** The engine's pid once the first run's warm-up is running (the manifest names it while its stage runs); undefined after 30 s. */
export async function runningWarmupPid(ws: string): Promise<number | undefined> {
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const ids = RunStore.list(selftrainDir(ws));
    if (ids.length === 0) continue;
    const stage = (await RunStore.open(selftrainDir(ws), ids[0]!)).stage(0, "warmup");
    if (stage.state === "running" && stage.pid !== undefined) return stage.pid;
  }
  return undefined;
}

/** A config.json object with one setting, by its dotted path, set to `value` (and nothing else). */
export function configWithSetting(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split(".");
  const out: Record<string, unknown> = {};
  let at = out;
  for (const k of keys.slice(0, -1)) at = (at[k] = {}) as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return out;
}
