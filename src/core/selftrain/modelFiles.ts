import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { saveCheckpoint, loadCheckpoint, type Checkpoint } from "../model/checkpoint";
import { tinyConfig } from "../model/config";
import { initWeights } from "../model/weights";
import { weightFilesOf } from "../model/modelFolder";
import { inspectModelFolder, ModelFolderError } from "../model/inspectModel";
import { trainBpe } from "../tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../tokenizer/tokenizer";
import type { SelfTrainConfig } from "./configTypes";
import type { Example } from "../data/example";

/** Whether the run's base model (runs/<id>/base) is still to be made: it is complete once its config.json is written. */
export function needsBaseModel(runDir: string): boolean {
  return !existsSync(join(runDir, "base", "config.json"));
}

/**
 * Before a run's base model is made from model.init's folder (and so before a run is created for it): the checks
 * `selftrain model inspect` runs, which are loading's (config.json's keys and sizes, the weight headers against
 * them, the tokenizer, the chat template rendered as model.promptFormat uses it) and every weight value finite. A
 * folder loading would refuse then ends the command with no run made, naming config.json's model.init, the file
 * and what to do, instead of leaving a run whose warm-up failed. The values are read once, without converting
 * them (checkWeightValues); copying the folder into the run reads them again, from the page cache. Nothing to
 * check for a new model.
 */
export function checkModelInit(config: SelfTrainConfig, workspace: string, configFile: string): void {
  if (config.model.init === "new") return;
  try {
    inspectModelFolder(resolve(workspace, config.model.init), { values: true, promptFormat: config.model.promptFormat });
  } catch (e) {
    if (!(e instanceof ModelFolderError)) throw e;
    throw new Error(`${configFile}: model.init ${JSON.stringify(config.model.init)} cannot be used, so no run was started: ${e.message} ` +
      "(fix the folder or set model.init to another; selftrain model inspect DIR checks a folder)");
  }
}

/**
 * The run's base model (runs/<id>/base): every SFT step restarts from it (method.md, step 7). A new model
 * gets a BPE tokenizer trained on the training questions and rationales and seeded random weights; an
 * existing Hugging Face folder is copied as it is, in its dtype and its weight files' layout, which export
 * writes the trained model in.
 */
export function ensureBaseModel(runDir: string, config: SelfTrainConfig, train: readonly Example[], workspace: string): Checkpoint {
  const dir = join(runDir, "base");
  if (!needsBaseModel(runDir)) return loadCheckpoint(dir);
  let base: Checkpoint;
  let layout: ReadonlyMap<string, string> | undefined;
  if (config.model.init === "new") {
    const tokenizer = tokenizerFromFiles(trainBpe(train.flatMap((e) => [e.question, e.rationale]), { vocabSize: config.model.vocabSize }));
    const m = config.model;
    const modelConfig = tinyConfig(tokenizer.vocabSize, {
      hidden_size: m.hiddenSize,
      intermediate_size: m.intermediateSize,
      num_hidden_layers: m.layers,
      num_attention_heads: m.heads,
      num_key_value_heads: m.kvHeads,
      max_position_embeddings: m.maxPositions,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      pad_token_id: tokenizer.padId,
    });
    base = { config: modelConfig, weights: initWeights(modelConfig, config.seed), tokenizer };
  } else {
    const from = resolve(workspace, config.model.init);
    base = loadCheckpoint(from);
    layout = weightFilesOf(from);
  }
  saveCheckpoint(dir, base, {}, layout ? { layout } : {});
  return base;
}
