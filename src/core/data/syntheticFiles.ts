import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSyntheticTask, toJsonlRecord, type RationaleStyles } from "./synthetic";
import { splitExamples } from "./splits";

export interface SyntheticSet {
  dir: string;
  counts: { train: number; dev: number; test: number };
}

/** Writes the synthetic task as DIR/train.jsonl, dev.jsonl and test.jsonl (GSM8K format), split by seed. */
export function writeSyntheticSet(dir: string, seed: number, train: number, dev: number, test: number, maxSteps = 4, styles: RationaleStyles = "one"): SyntheticSet {
  const all = generateSyntheticTask({ seed, count: train + dev + test, maxSteps, styles });
  const split = splitExamples(all, { dev, test }, seed);
  mkdirSync(dir, { recursive: true });
  for (const name of ["train", "dev", "test"] as const) {
    writeFileSync(join(dir, `${name}.jsonl`), split[name].map(toJsonlRecord).join("\n") + "\n");
  }
  return { dir, counts: { train, dev, test } };
}

