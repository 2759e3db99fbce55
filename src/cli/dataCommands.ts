import { resolve } from "node:path";
import { writeSyntheticSet } from "../core/data/syntheticFiles";
import { inspectDataset, formatDatasetReport } from "../core/data/datasetReport";
import { readDataset } from "../core/data/jsonlReader";
import { trainBpe } from "../core/tokenizer/bpeTrainer";
import { saveTokenizer, loadTokenizer } from "../core/tokenizer/tokenizer";
import { parse, intOption, UsageError } from "./args";

const GENERATE_USAGE = `
selftrain generate --out DIR [--seed N] [--train N] [--dev N] [--test N] [--max-steps N] [--styles one|varied]

Writes a synthetic GSM8K-format task (1 to 4 chained operations, calculator annotations, '#### answer')
as DIR/train.jsonl, DIR/dev.jsonl and DIR/test.jsonl. The same seed gives the same files. --max-steps 1 to 4
bounds the number of chained operations (default 4). --styles varied writes each gold rationale in one of three
styles (story, bare equations, numbered steps), so a problem has several distinct correct rationales (default one).
`;

export function generateCommand(argv: string[]): void {
  const { values } = parse(argv, { out: { type: "string" }, seed: { type: "string" }, train: { type: "string" }, dev: { type: "string" }, test: { type: "string" }, "max-steps": { type: "string" }, styles: { type: "string" } }, GENERATE_USAGE);
  const styles = values["styles"] ?? "one";
  if (styles !== "one" && styles !== "varied") throw new UsageError(`--styles must be one or varied, got ${JSON.stringify(styles)}`);
  const maxSteps = intOption(values, "max-steps", 4, 1);
  if (maxSteps > 4) throw new UsageError("--max-steps must be between 1 and 4");
  if (typeof values["out"] !== "string") throw new UsageError("generate needs --out DIR");
  const set = writeSyntheticSet(resolve(values["out"]), intOption(values, "seed", 0), intOption(values, "train", 2000, 1), intOption(values, "dev", 200), intOption(values, "test", 500), maxSteps, styles);
  console.log(`wrote ${set.counts.train} train, ${set.counts.dev} dev, ${set.counts.test} test problems to ${set.dir}`);
}

const CHECK_USAGE = `
selftrain check FILE.jsonl [FILE.jsonl …]

Reads GSM8K-style JSONL files ({"question", "answer"} with '#### N' or 'A: N'), reports bad lines with their
line numbers, and checks every <<expr=result>> calculator annotation. Exit code 1 when a file has bad lines.
`;

export async function checkCommand(argv: string[]): Promise<number> {
  const { positionals } = parse(argv, {}, CHECK_USAGE);
  if (positionals.length === 0) throw new UsageError("check needs at least one file");
  let bad = 0;
  for (const file of positionals) {
    const report = await inspectDataset(file);
    console.log(formatDatasetReport(report));
    bad += report.errorCount;
  }
  return bad > 0 ? 1 : 0;
}

const TOKENIZER_USAGE = `
selftrain tokenizer --data FILE.jsonl [--data …] --out DIR [--vocab N]

Trains a byte-level BPE tokenizer (digits split one by one; <pad> <s> </s> special tokens) on the questions
and rationales of the files, and writes DIR/tokenizer.json and DIR/tokenizer_config.json in Hugging Face format.
`;

export async function tokenizerCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { data: { type: "string", multiple: true }, out: { type: "string" }, vocab: { type: "string" } }, TOKENIZER_USAGE);
  const data = values["data"] as unknown as string[] | undefined;
  if (!data || data.length === 0) throw new UsageError("tokenizer needs --data FILE");
  if (typeof values["out"] !== "string") throw new UsageError("tokenizer needs --out DIR");
  const texts: string[] = [];
  for (const f of data) texts.push(...(await datasetTexts(f)));
  const vocab = intOption(values, "vocab", 1024, 259);
  saveTokenizer(trainBpe(texts, { vocabSize: vocab }), values["out"]);
  const tk = loadTokenizer(values["out"]);
  console.log(`wrote a ${tk.vocabSize}-token BPE tokenizer to ${values["out"]}`);
}

/** Questions and rationales of a data set file, read by the data set reader (bad lines name their line). */
export async function datasetTexts(file: string): Promise<string[]> {
  const { examples, errors } = await readDataset(file);
  if (errors.length > 0) throw new Error(errors[0]!.message);
  return examples.flatMap((e) => [e.question, e.rationale]);
}

