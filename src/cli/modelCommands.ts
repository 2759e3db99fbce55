import { existsSync, readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { resolve } from "node:path";
import { parse, UsageError } from "./args";
import { describeInspection, inspectModelFolder, ModelFolderError } from "../core/model/inspectModel";
import { estimateMemory, memoryVerdict } from "../core/model/memoryEstimate";
import { memorySettings } from "../core/selftrain/memorySettings";
import { loadCheckpoint } from "../core/model/checkpoint";
import { createEngine } from "../core/engine/auto/createEngine";
import { makeBatch } from "../core/train/batching";
import { configPath, readWorkspaceConfig } from "../core/selftrain/workspace";
import { defaultConfig, describeTraining } from "../core/selftrain/config";
import type { SelfTrainConfig } from "../core/selftrain/configTypes";
import type { EncodedSequence, PromptFormatSetting } from "../core/model/promptFormat";

const MODEL_USAGE = `
selftrain model inspect DIR [-w WORKSPACE] [--quick]
selftrain model score DIR --ids FILE.jsonl [-w WORKSPACE]

inspect  what a Hugging Face model folder holds (family, parameters, dtype, shards, vocabulary, tied or not,
         RoPE, chat template), the training settings init --model gives it (a pretrained model's), and the
         estimated peak memory of SFT, DPO and sampling with the workspace's settings (those settings without a
         workspace) on this machine, with a verdict. The folder gets the checks loading makes (config.json, the
         weights' headers against it, the tokenizer, its chat template rendering a sample question within the
         template limits, every weight value finite); exit code 1 when it cannot be used, with the reason in one
         line. Reading every value takes one read of the weight files (under a second for 135M parameters);
         --quick reads the headers only and leaves values to loading.
score    for each line {"ids": [...]} of FILE.jsonl, one line {"logprobs": [...]} on stdout: log p(ids[t] | ids[<t])
         for t ≥ 1, computed by the workspace's engine through the round's log-prob code path.
`;

/** The workspace's settings when it has a config, else the defaults (for a model folder `dir`: a pretrained model's). */
function settingsOf(values: Record<string, string | boolean | undefined>, dir?: string): { config: SelfTrainConfig; source: string } {
  const ws = resolve(typeof values["workspace"] === "string" ? values["workspace"] : ".");
  if (existsSync(configPath(ws))) return { config: readWorkspaceConfig(ws), source: configPath(ws) };
  return dir === undefined ? { config: defaultConfig(), source: "the default settings" } : { config: defaultConfig(dir), source: "the pretrained model's defaults above" };
}

export async function modelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "inspect") return inspectCommand(rest);
  if (sub === "score") return scoreCommand(rest);
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(MODEL_USAGE.trim() + "\n");
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown model command "${sub}" (inspect or score)`);
}

/** The workspace's model.promptFormat when it has a config: with "plain" the model's chat template is never rendered. */
function workspacePromptFormat(values: Record<string, string | boolean | undefined>): PromptFormatSetting | undefined {
  const ws = resolve(typeof values["workspace"] === "string" ? values["workspace"] : ".");
  return existsSync(configPath(ws)) ? readWorkspaceConfig(ws).model.promptFormat : undefined;
}

function inspectCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, { workspace: { type: "string", short: "w" }, quick: { type: "boolean" } }, MODEL_USAGE);
  if (positionals.length !== 1) throw new UsageError("model inspect needs one model folder");
  const dir = resolve(positionals[0]!);
  let m;
  try {
    m = inspectModelFolder(dir, { values: values["quick"] !== true, promptFormat: workspacePromptFormat(values) });
  } catch (e) {
    if (e instanceof ModelFolderError) {
      process.stderr.write(`selftrain: cannot use this model: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const { config, source } = settingsOf(values, dir);
  console.log(describeInspection(m).join("\n"));
  // What `init --model` would write: a pretrained model's settings, whatever a workspace here holds.
  console.log(`\nsettings for this model if you init with it (a pretrained model's: docs/pretrained-defaults.md):`);
  console.log(describeTraining(defaultConfig(dir)).map((l) => `  ${l}`).join("\n"));
  const estimates = estimateMemory(m.config, memorySettings(config));
  console.log(`\npeak memory (ONNX Runtime on the CPU, settings from ${source}):`);
  const verdict = memoryVerdict(estimates, totalmem());
  console.log(verdict.lines.join("\n"));
  return 0;
}

async function scoreCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { workspace: { type: "string", short: "w" }, ids: { type: "string" } }, MODEL_USAGE);
  if (positionals.length !== 1) throw new UsageError("model score needs one model folder");
  if (typeof values["ids"] !== "string") throw new UsageError("model score needs --ids FILE.jsonl");
  const file = resolve(values["ids"]);
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const dir = resolve(positionals[0]!);
  try {
    inspectModelFolder(dir);
  } catch (e) {
    if (e instanceof ModelFolderError) {
      process.stderr.write(`selftrain: cannot use this model: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  let ckpt;
  try {
    ckpt = loadCheckpoint(dir); // also refuses what the headers cannot show: a NaN or infinity among the values
  } catch (e) {
    process.stderr.write(`selftrain: cannot use this model: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const V = ckpt.config.vocab_size;
  const maxPos = ckpt.config.max_position_embeddings;
  // Every line is checked before any compute: a bad line is reported as file:line.
  const rows: number[][] = [];
  readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not JSON`);
    }
    const ids = (v as { ids?: unknown }).ids;
    if (!Array.isArray(ids) || ids.length === 0) throw new UsageError(`${where}: needs "ids", a non-empty list of token ids`);
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new UsageError(`${where}: ${JSON.stringify(id)} is not a token id of this model (0 to ${V - 1})`);
    if (ids.length > maxPos) throw new UsageError(`${where}: ${ids.length} tokens, longer than the model's ${maxPos} positions`);
    rows.push(ids as number[]);
  });
  const { config } = settingsOf(values);
  const engine = await createEngine({ engine: config.engine.name, tfBackend: config.engine.tfBackend, executionProvider: config.engine.executionProvider, threads: config.engine.threads }, ckpt.config, ckpt.weights, undefined, true);
  try {
    const micro = Math.max(1, config.sft.microBatchSize);
    for (const ids of rows) {
      // Log p(ids[t] | ids[<t]) is the sequence log-prob of the prefix ids[0..t] whose "completion" is ids[t]:
      // the same makeBatch + sequenceLogProbs the round's reference log-probs use.
      const prefixes: EncodedSequence[] = [];
      for (let t = 1; t < ids.length; t++) prefixes.push({ ids: ids.slice(0, t + 1), promptLength: t });
      const out: number[] = [];
      for (let s = 0; s < prefixes.length; s += micro) {
        const part = prefixes.slice(s, s + micro);
        const batch = makeBatch(part, ckpt.config.pad_token_id, Math.max(...part.map((p) => p.ids.length - 1)));
        out.push(...(await engine.sequenceLogProbs(batch)));
      }
      process.stdout.write(JSON.stringify({ logprobs: out }) + "\n");
    }
  } finally {
    engine.dispose();
  }
  return 0;
}
