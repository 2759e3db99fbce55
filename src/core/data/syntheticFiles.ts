import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSyntheticTask, toJsonlRecord, type RationaleStyles } from "./synthetic";
import { splitExamples } from "./splits";

export interface SyntheticSet {
  dir: string;
  counts: { train: number; dev: number; test: number };
}

const SPLITS = ["train", "dev", "test"] as const;

/**
 * Writes the synthetic task as DIR/train.jsonl, dev.jsonl and test.jsonl (GSM8K format), split by seed. A data
 * file is never overwritten: one that exists with the same content is left as it is (the demo run twice), and
 * one with other content stops the write, naming it, before any file is touched.
 */
export function writeSyntheticSet(dir: string, seed: number, train: number, dev: number, test: number, maxSteps = 4, styles: RationaleStyles = "one"): SyntheticSet {
  const all = generateSyntheticTask({ seed, count: train + dev + test, maxSteps, styles });
  const split = splitExamples(all, { dev, test }, seed);
  const files = SPLITS.map((name) => ({ path: join(dir, `${name}.jsonl`), text: split[name].map(toJsonlRecord).join("\n") + "\n" }));
  const fresh = files.filter((f) => {
    if (!existsSync(f.path)) return true;
    if (readFileSync(f.path, "utf8") === f.text) return false;
    throw new Error(`${f.path} already exists with other content; it is not overwritten (write the set to another folder)`);
  });
  mkdirSync(dir, { recursive: true });
  // "wx": even a file that appeared since the check above is not overwritten.
  for (const f of fresh) writeFileSync(f.path, f.text, { flag: "wx" });
  return { dir, counts: { train, dev, test } };
}

/** `parent/name`, or `name-2`, `name-3` …: the first folder holding none of the data set's files. */
export function freeDataFolder(parent: string, name = "data"): string {
  for (let i = 1; ; i++) {
    const dir = join(parent, i === 1 ? name : `${name}-${i}`);
    if (SPLITS.every((s) => !existsSync(join(dir, `${s}.jsonl`)))) return dir;
  }
}
