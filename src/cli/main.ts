#!/usr/bin/env node
/** `selftrain`: Self-Training Studio from a terminal (headless runs, CI, servers). */
import { UsageError } from "./args";
import { generateCommand, checkCommand, tokenizerCommand } from "./dataCommands";
import { demoCommand } from "./demo";
import { modelCommand } from "./modelCommands";
import { initCommand, roundCommand, evalCommand, statusCommand, exportCommand, unlockCommand } from "./runCommands";

const USAGE = `
selftrain <command> [options]   (every command takes --help)

  init        write .selftrain/config.json for a data set (the method's defaults), optionally a model folder
  model       inspect a Hugging Face model folder (family, size, memory verdict) or score token ids with it
  warmup      run the warm-up SFT (round 0) of a run
  round       run or resume one round of DPO-augmented self-training (or plain self-training: --mode st)
  eval        evaluate a round's model again
  status      table of runs, rounds and stages
  unlock      release a run's lock that a process which is gone left (one from another machine: --force)
  export      a round's pairs (TRL prompt/chosen/rejected) and pseudo-labels as JSONL
  demo        the project's main job: warm-up and one round on a synthetic task (--model smollm2: on GSM8K with a real model)
  generate    write a synthetic GSM8K-format task (train/dev/test JSONL)
  check       read GSM8K-style JSONL files: bad lines with line numbers, calculator annotations checked
  tokenizer   train a byte-level BPE tokenizer and save it as Hugging Face tokenizer.json
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "init":
      return initCommand(rest);
    case "model":
      return modelCommand(rest);
    case "warmup":
      return roundCommand(rest, true);
    case "round":
      return roundCommand(rest, false);
    case "eval":
      return evalCommand(rest);
    case "status":
      return statusCommand(rest);
    case "export":
      return exportCommand(rest);
    case "unlock":
      return unlockCommand(rest);
    case "demo":
      return demoCommand(rest);
    case "generate":
      generateCommand(rest);
      return 0;
    case "check":
      return checkCommand(rest);
    case "tokenizer":
      await tokenizerCommand(rest);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE.trim() + "\n");
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}" (try selftrain --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`selftrain: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
