import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { inspectDataset, formatDatasetReport } from "../core/data/datasetReport";
import { trainBpe } from "../core/tokenizer/bpeTrainer";
import { saveTokenizer, loadTokenizer } from "../core/tokenizer/tokenizer";
import { writeSyntheticSet, datasetTexts } from "./dataCommands";
import { parse, intOption } from "./args";

const DEMO_USAGE = `
selftrain demo [--dir DIR] [--seed N]

The project's main job, end to end on what exists: generates the synthetic task into DIR (default
./selftrain-demo), checks every file and calculator annotation, trains a BPE tokenizer on the train split and
verifies it round-trips every dev and test text; checks GSM8K too when it is found beside the project
(../shared/data/gsm8k, or $GSM8K_DIR).
`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { dir: { type: "string" }, seed: { type: "string" } }, DEMO_USAGE);
  const dir = resolve(typeof values["dir"] === "string" ? values["dir"] : "selftrain-demo");
  const seed = intOption(values, "seed", 0);
  const started = Date.now();

  const set = writeSyntheticSet(join(dir, "data"), seed, 2000, 200, 500);
  console.log(`synthetic task (seed ${seed}): ${set.counts.train} train, ${set.counts.dev} dev, ${set.counts.test} test → ${set.dir}`);
  let bad = 0;
  for (const split of ["train", "dev", "test"]) {
    const report = await inspectDataset(join(set.dir, `${split}.jsonl`));
    console.log(formatDatasetReport(report));
    bad += report.errorCount + (report.annotations - report.annotationsCorrect);
  }

  const tokDir = join(dir, "tokenizer");
  saveTokenizer(trainBpe(await datasetTexts(join(set.dir, "train.jsonl")), { vocabSize: 512 }), tokDir);
  const tk = loadTokenizer(tokDir);
  let chars = 0;
  let tokens = 0;
  let mismatches = 0;
  for (const text of [...(await datasetTexts(join(set.dir, "dev.jsonl"))), ...(await datasetTexts(join(set.dir, "test.jsonl")))]) {
    const ids = tk.encode(text);
    chars += text.length;
    tokens += ids.length;
    if (tk.decode(ids) !== text) mismatches++;
  }
  console.log(`tokenizer: ${tk.vocabSize} tokens → ${tokDir}; ${(chars / tokens).toFixed(2)} characters per token on dev+test; ${mismatches} round-trip mismatches`);

  const gsm8k = process.env["GSM8K_DIR"] ?? resolve(__dirname, "..", "..", "shared", "data", "gsm8k");
  if (existsSync(join(gsm8k, "train.jsonl"))) {
    for (const split of ["train", "test"]) {
      const report = await inspectDataset(join(gsm8k, `${split}.jsonl`));
      console.log(formatDatasetReport(report));
      bad += report.errorCount;
    }
  } else {
    console.log(`GSM8K not found at ${gsm8k}: skipped (set GSM8K_DIR to check a copy)`);
  }
  console.log(`demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return bad + mismatches > 0 ? 1 : 0;
}
