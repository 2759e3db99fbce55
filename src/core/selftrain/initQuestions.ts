import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/*
 * Initialize Workspace's questions, in order, whatever asks them (the editor's quick picks and dialogs): the data
 * (a file, with its test set asked for or its split stated, or the built-in synthetic task), then the model (a new
 * one trained from scratch, or a local model folder). Every answer is asked for: nothing is picked silently.
 */

export interface InitChoice {
  id: string;
  label: string;
  detail: string;
}

/** What asks the questions. Each returns null when the person cancels (Escape), which ends Initialize. */
export interface InitAsker {
  pick(title: string, choices: InitChoice[]): Promise<string | null>;
  /** A JSON Lines file. */
  file(title: string): Promise<string | null>;
  /** A model folder, checked and accepted: model.init as it will be stored, or null. */
  /** `data`: the data already chosen, so the model check can say how long a round on it takes. */
  modelFolder(data: InitAnswers["data"]): Promise<string | null>;
}

export interface InitAnswers {
  /** The data: a file (absolute), or the built-in synthetic task, which the caller generates. */
  data: { kind: "file"; train: string; test: string } | { kind: "synthetic" };
  /** model.init: "new" or the folder. */
  model: string;
  /** What the data's test set is, in one line, for the summary ("test: test.jsonl", "test: 200 questions taken from …"). */
  testSet: string;
}

export const DATA_TITLE = "Initialize Self-Training (1 of 2): the data";
export const TEST_TITLE = "Initialize Self-Training (1 of 2): the test set";
export const MODEL_TITLE = "Initialize Self-Training (2 of 2): the model";

/** The synthetic task Initialize generates: questions in its train and test files. */
export const SYNTHETIC_SIZES = { train: 2000, test: 500 } as const;

export const DATA_CHOICES: readonly InitChoice[] = [
  { id: "file", label: "$(file) Use a data set file…", detail: "GSM8K-style JSONL: {\"question\", \"answer\"} with <<calculations>> and #### answer" },
  { id: "synthetic", label: "$(sparkle) Generate the built-in synthetic task", detail: `Arithmetic word problems a small model learns on a CPU (${SYNTHETIC_SIZES.train.toLocaleString("en-US")} train, ${SYNTHETIC_SIZES.test} test)` },
];

export const MODEL_CHOICES: readonly InitChoice[] = [
  { id: "new", label: "$(add) New small model, trained from scratch", detail: "A small Llama-style model and a BPE tokenizer trained on the data (warm-up SFT first)" },
  { id: "folder", label: "$(folder) Use a model folder…", detail: "A local Hugging Face checkpoint (Qwen2.5, Qwen3, Llama 3.2, SmolLM2)" },
];

/** A test file beside the training file: "gsm8k-train.jsonl" → "gsm8k-test.jsonl", else "test.jsonl"; null when there is none. */
export function testFileBeside(train: string): string | null {
  const dir = dirname(train);
  const name = basename(train);
  const candidates = [name.replace(/train/i, (m) => (m === "TRAIN" ? "TEST" : m === "Train" ? "Test" : "test")), "test.jsonl"];
  for (const c of candidates) {
    const file = join(dir, c);
    if (c !== name && existsSync(file)) return file;
  }
  return null;
}

/** The split a run takes from the training file when no test file is named (runData.ts), in words. */
export function splitStatement(train: string, split: { devSize: number; testSize: number }): string {
  return `test: ${split.testSize} questions taken at random (by seed) from ${basename(train)} (data.testSize), dev: up to ${split.devSize} more (data.devSize)`;
}

/** Asks the data, its test set, then the model; null when the person cancels any of them. */
export async function askInitialize(ask: InitAsker, split: { devSize: number; testSize: number }): Promise<InitAnswers | null> {
  const dataKind = await ask.pick(DATA_TITLE, [...DATA_CHOICES]);
  if (dataKind === null) return null;
  let data: InitAnswers["data"] = { kind: "synthetic" };
  let testSet = `test: the synthetic task's own ${SYNTHETIC_SIZES.test} questions (test.jsonl)`;
  if (dataKind === "file") {
    const train = await ask.file("Training data set (GSM8K-style JSONL)");
    if (train === null) return null;
    const beside = testFileBeside(train);
    const choices: InitChoice[] = [
      ...(beside ? [{ id: "beside", label: `$(file) Use ${basename(beside)} beside it`, detail: beside }] : []),
      { id: "file", label: "$(file) Use a test set file…", detail: "Held-out questions in the same format, never trained on" },
      { id: "split", label: `$(split-horizontal) Take ${split.testSize} test questions from ${basename(train)}`, detail: splitStatement(train, split) },
    ];
    const how = await ask.pick(TEST_TITLE, choices);
    if (how === null) return null;
    let test = "";
    if (how === "beside") test = beside!;
    else if (how === "file") {
      const chosen = await ask.file("Test data set (GSM8K-style JSONL)");
      if (chosen === null) return null;
      test = chosen;
    }
    data = { kind: "file", train, test };
    testSet = test ? `test: ${basename(test)}` : splitStatement(train, split);
  }
  const modelKind = await ask.pick(MODEL_TITLE, [...MODEL_CHOICES]);
  if (modelKind === null) return null;
  const model = modelKind === "folder" ? await ask.modelFolder(data) : "new";
  if (model === null) return null;
  return { data, model, testSet };
}
