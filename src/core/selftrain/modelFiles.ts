import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { saveCheckpoint, loadCheckpoint, type Checkpoint } from "../model/checkpoint";
import { tinyConfig } from "../model/config";
import { initWeights } from "../model/weights";
import { weightFilesOf } from "../model/modelFolder";
import { trainBpe } from "../tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../tokenizer/tokenizer";
import type { SelfTrainConfig } from "./config";
import type { Example } from "../data/example";

/**
 * The run's base model (runs/<id>/base): every SFT step restarts from it (method.md, step 7). A new model
 * gets a BPE tokenizer trained on the training questions and rationales and seeded random weights; an
 * existing Hugging Face folder is copied as it is, in its dtype and its weight files' layout, which export
 * writes the trained model in.
 */
export function ensureBaseModel(runDir: string, config: SelfTrainConfig, train: readonly Example[], workspace: string): Checkpoint {
  const dir = join(runDir, "base");
  if (existsSync(join(dir, "config.json"))) return loadCheckpoint(dir);
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
