import { Rng } from "../util/rng";
import type { Example } from "./example";

export interface SplitSizes {
  dev: number;
  test: number;
}

/**
 * Deterministic train/dev/test split: the same seed and examples give the same split on every machine.
 * The paper takes its 768 dev questions at random from GSM8K's train file and keeps the official test file;
 * use `test: 0` for that and read the test file separately.
 */
export function splitExamples(examples: readonly Example[], sizes: SplitSizes, seed: number): {
  train: Example[];
  dev: Example[];
  test: Example[];
} {
  if (sizes.dev < 0 || sizes.test < 0 || sizes.dev + sizes.test > examples.length) {
    throw new Error(`cannot take ${sizes.dev} dev and ${sizes.test} test examples from ${examples.length}`);
  }
  const order = new Rng(seed).shuffle(examples.map((_, i) => i));
  const pick = (from: number, n: number): Example[] =>
    order.slice(from, from + n).sort((a, b) => a - b).map((i) => examples[i] as Example);
  const test = pick(0, sizes.test);
  const dev = pick(sizes.test, sizes.dev);
  const train = pick(sizes.test + sizes.dev, examples.length - sizes.test - sizes.dev);
  return { train, dev, test };
}
