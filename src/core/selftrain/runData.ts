import { readDataset } from "../data/jsonlReader";
import { splitExamples } from "../data/splits";
import type { Example } from "../data/example";
import type { SelfTrainConfig } from "./configTypes";
import { resolveStored } from "./storedPath";

export interface RunData {
  train: Example[];
  dev: Example[];
  test: Example[];
  /** What the splits did other than the settings say (a dev set cut to a quarter of the data), for the run's log. */
  notes: string[];
}

/** Any bad line stops the run: training on a silently shortened data set is worse than a clear error. */
async function readAll(file: string): Promise<Example[]> {
  const { examples, errors } = await readDataset(file);
  if (errors.length > 0) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more bad lines)` : "";
    throw new Error(`${errors[0]!.message}${more}`);
  }
  if (examples.length === 0) throw new Error(`${file}: no examples`);
  return examples;
}

/**
 * The run's splits: dev (and test, when no test file is given) taken at random by seed from the train file,
 * as the paper takes its dev set from GSM8K's train file.
 */
export async function loadRunData(config: SelfTrainConfig, workspace: string): Promise<RunData> {
  // Relative inside the workspace, absolute outside it (storedPath): both are read.
  const at = (p: string): string => resolveStored(workspace, p);
  let all = await readAll(at(config.data.train));
  const testFromFile = config.data.test.length > 0;
  const test = testFromFile ? await readAll(at(config.data.test)) : [];
  // The dev set takes at most a quarter of the questions, so that a devSize meant for GSM8K's 7,473 leaves a small
  // set most of its questions to train on; said in the log, since the setting asked for more.
  const dev = Math.min(config.data.devSize, Math.floor(all.length / 4));
  const notes = dev < config.data.devSize
    ? [`data.devSize is ${config.data.devSize}, more than a quarter of the ${all.length} questions in ${config.data.train}: the dev set takes ${dev} of them`]
    : [];
  if (!testFromFile && config.data.testSize > all.length - dev) {
    throw new Error(`data.testSize is ${config.data.testSize}, but ${config.data.train} has ${all.length - dev} questions besides the dev set's ${dev}: lower data.testSize, or name a test file in data.test`);
  }
  const split = splitExamples(all, { dev, test: testFromFile ? 0 : config.data.testSize }, config.seed);
  all = split.train;
  const train = config.data.maxTrainQuestions > 0 ? all.slice(0, config.data.maxTrainQuestions) : all;
  return { train, dev: split.dev, test: testFromFile ? test : split.test, notes };
}
