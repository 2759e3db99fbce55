import { ENGINE_NAMES, EXECUTION_PROVIDERS, MODES, SFT_FROM, TF_BACKENDS, type SelfTrainConfig, type StageTraining } from "./configTypes";
import type { PromptFormatSetting } from "../model/promptFormat";
import { MODEL_LIMITS } from "../model/config";

/*
 * The one description of every setting of .selftrain/config.json: its type, range, allowed values and one line of
 * meaning. parseConfig checks a config against it (config.ts), and the JSON schema the editor validates,
 * completes and explains the file with is generated from it (configSchema.ts), as are the selfTraining.* settings
 * in package.json: the rules cannot drift apart. Defaults stay in defaultConfig(), whose type makes this table
 * name every setting exactly once (SettingPath).
 */

export const CONFIG_FORMAT_VERSION = 1;

export const PROMPT_FORMATS = ["auto", "plain", "chat"] as const satisfies readonly PromptFormatSetting[];
/** Fails to compile when model/promptFormat.ts gains a format this table does not list. */
export const PROMPT_FORMATS_COMPLETE: [PromptFormatSetting] extends [(typeof PROMPT_FORMATS)[number]] ? true : never = true;

/** The dotted path of every leaf setting: "mode", "model.layers", "sft.from", … */
type Leaves<T, P extends string = ""> = { [K in keyof T & string]: T[K] extends object ? Leaves<T[K], `${P}${K}.`> : `${P}${K}` }[keyof T & string];
export type SettingPath = Leaves<SelfTrainConfig>;
/** The settings' groups: "data", "model", … */
export type SettingGroup = { [K in keyof SelfTrainConfig]: SelfTrainConfig[K] extends object ? K : never }[keyof SelfTrainConfig];

export interface SettingRule {
  /** "integer" is a number that must be whole. */
  readonly type: "integer" | "number" | "string" | "boolean";
  /** One line of meaning: the hover text in config.json and the selfTraining.* setting's description. */
  readonly description: string;
  /** Inclusive bounds, unless the matching `…Exclusive` is set. */
  readonly min?: number;
  readonly max?: number;
  readonly minExclusive?: true;
  readonly maxExclusive?: true;
  /** What 0 stands for, where it is not a plain zero ("from epochs"). */
  readonly zero?: string;
  readonly enum?: readonly string[];
  readonly enumDescriptions?: readonly string[];
}

/** Questions a data setting may count: far above any word-problem set this trains on (GSM8K has 7,473, MetaMathQA 395K). */
const MAX_QUESTIONS = 10_000_000;
const POSITIONS = MODEL_LIMITS.max_position_embeddings;

type StageName = "warmup" | "dpo" | "sft";
/**
 * A training stage's settings. Stage limits: a million steps or a thousand epochs is days of compute on any machine
 * this runs on; learning rates have only their lower bound (a rate that diverges fails its stage with the loss named).
 */
function stageRules<S extends StageName>(stage: S, what: string): { [K in keyof StageTraining as `${S}.${K}`]: SettingRule } {
  const rules: { [K in keyof StageTraining]: SettingRule } = {
    epochs: stage === "dpo"
      ? { type: "integer", min: 0, max: 1000, description: "DPO: not used, DPO runs dpo.steps optimiser steps." }
      : { type: "integer", min: 0, max: 1000, description: `${what}: passes over the data (used when ${stage}.steps is 0).` },
    steps: stage === "dpo"
      ? { type: "integer", min: 1, max: 1_000_000, description: "DPO: optimiser steps." }
      : { type: "integer", min: 0, max: 1_000_000, zero: `from ${stage}.epochs`, description: `${what}: optimiser steps.` },
    batchSize: { type: "integer", min: 1, max: 65_536, description: `${what}: ${stage === "dpo" ? "pairs" : "sequences"} per optimiser step.` },
    microBatchSize: { type: "integer", min: 1, max: 65_536, description: `${what}: ${stage === "dpo" ? "pairs" : "sequences"} per forward/backward pass, at most ${stage}.batchSize (gradients accumulate).` },
    learningRate: { type: "number", min: 0, minExclusive: true, description: `${what}: peak learning rate (cosine schedule). Above 1e-3 on a model folder it is refused unless model.allowHighLearningRate (docs/pretrained-defaults.md).` },
    warmupRatio: { type: "number", min: 0, max: 1, maxExclusive: true, description: `${what}: share of the steps spent warming the learning rate up.` },
    maxLength: { type: "integer", min: 8, max: POSITIONS, description: `${what}: longest sequence trained on, in tokens (prompt and rationale).` },
    maxPromptLength: { type: "integer", min: 0, max: POSITIONS, zero: "no limit", description: `${what}: a sequence longer than maxLength keeps only the last this many tokens of its prompt, so its rationale is not cut away (TRL's max_prompt_length).` },
  };
  return Object.fromEntries(Object.entries(rules).map(([k, r]) => [`${stage}.${k}`, r])) as { [K in keyof StageTraining as `${S}.${K}`]: SettingRule };
}

/** Every setting, in the order the schema and the settings editor list them. */
export const SETTINGS: { readonly [P in SettingPath]: SettingRule } = {
  formatVersion: { type: "integer", min: 1, max: CONFIG_FORMAT_VERSION, description: "Version of this file's format: a newer one than this extension reads is refused." },
  mode: { type: "string", enum: MODES, enumDescriptions: ["DPO-augmented self-training (the method).", "Plain self-training, the paper's baseline: no DPO step."], description: "Method: \"dpo-st\" (DPO-augmented self-training) or \"st\" (plain self-training, the paper's baseline)." },
  // The Rng takes `seed | 0`: a larger seed would wrap onto another's sequence.
  seed: { type: "integer", min: 0, max: 2 ** 31 - 1, description: "Seed of every random choice (splits, initialisation, batches, sampling)." },
  "data.train": { type: "string", description: "Training data set (GSM8K-style JSONL), relative to the workspace folder or absolute." },
  "data.test": { type: "string", description: "Held-out test set (GSM8K-style JSONL); empty takes data.testSize questions from the training file." },
  "data.devSize": { type: "integer", min: 0, max: MAX_QUESTIONS, description: "Dev questions taken at random (by seed) from the training file." },
  "data.testSize": { type: "integer", min: 0, max: MAX_QUESTIONS, description: "Test questions taken from the training file when data.test is empty." },
  "data.maxTrainQuestions": { type: "integer", min: 0, max: MAX_QUESTIONS, zero: "all", description: "Use only the first N training questions, for quick runs." },
  "model.init": { type: "string", description: "\"new\" trains a model from scratch; otherwise a local Hugging Face model folder (Llama, Qwen2, Qwen3 layouts), relative to the workspace folder or absolute." },
  // A new model's BPE vocabulary holds the 256 byte symbols and 3 special tokens at least (bpeTrainer). The sizes
  // admit every family we build, up to the limits a model folder's config.json has (MODEL_LIMITS).
  "model.vocabSize": { type: "integer", min: 259, max: MODEL_LIMITS.vocab_size, description: "Vocabulary of the BPE tokenizer trained for a new model." },
  "model.hiddenSize": { type: "integer", min: 2, max: MODEL_LIMITS.hidden_size, description: "Hidden size of a new model: divisible by model.heads, into an even head dimension." },
  "model.intermediateSize": { type: "integer", min: 1, max: MODEL_LIMITS.intermediate_size, description: "SwiGLU intermediate size of a new model." },
  "model.layers": { type: "integer", min: 1, max: MODEL_LIMITS.num_hidden_layers, description: "Transformer layers of a new model." },
  "model.heads": { type: "integer", min: 1, max: MODEL_LIMITS.num_attention_heads, description: "Attention heads of a new model: a multiple of model.kvHeads." },
  "model.kvHeads": { type: "integer", min: 1, max: MODEL_LIMITS.num_key_value_heads, description: "Key/value heads (grouped-query attention) of a new model." },
  // At least a training sequence's minimum length; below the stages' maxLength is refused too (config.ts).
  "model.maxPositions": { type: "integer", min: 8, max: POSITIONS, description: "Longest sequence (prompt and rationale) a new model handles: at least every stage's maxLength." },
  "model.promptFormat": {
    type: "string",
    enum: PROMPT_FORMATS,
    enumDescriptions: [
      "The model's chat template when its tokenizer_config.json has one, else the plain format.",
      "Always \"Question: …\\nAnswer: \" (base models and new models use it under \"auto\" too).",
      "The model's chat template (question as the user's message, rationale as the assistant's); an error for a model without one.",
    ],
    description: "How questions and rationales are laid out for the model: its chat template or the plain \"Question: …\\nAnswer: \" format.",
  },
  "model.allowHighLearningRate": { type: "boolean", description: "Allow a learning rate above 1e-3 on a pretrained model (model.init a folder). Such rates train a new model in minutes but destroy a pretrained one in a few steps, so they are refused unless this is set on purpose." },
  "engine.name": { type: "string", enum: ENGINE_NAMES, description: "Compute engine: \"auto\" picks the faster one on this machine." },
  "engine.tfBackend": { type: "string", enum: TF_BACKENDS, description: "TensorFlow.js backend: \"auto\" tries CUDA, native, WebAssembly, then plain CPU." },
  "engine.executionProvider": { type: "string", enum: EXECUTION_PROVIDERS, description: "ONNX Runtime execution provider: \"cpu\"; \"webgpu\" (any GPU through Vulkan, Metal or Direct3D 12, bundled with onnxruntime-node); \"cuda\" (needs onnxruntime-node's CUDA files, see the README)." },
  // ONNX Runtime starts every intra-op thread it is asked for: 100,000 took the worker to 7 GB and never got to a
  // step. The largest machines have a few hundred hardware threads (2 × 128-core EPYC: 512).
  "engine.threads": { type: "integer", min: 0, max: 512, zero: "one per core", description: "ONNX Runtime intra-op threads." },
  ...stageRules("warmup", "Warm-up SFT"),
  "sampling.dpoSamples": { type: "integer", min: 1, max: 1000, description: "Rationales sampled per question for the DPO step (paper: 5)." },
  "sampling.sftSamples": { type: "integer", min: 1, max: 1000, description: "Rationales sampled per question for pseudo-labels (paper: K = 3)." },
  "sampling.temperature": { type: "number", min: 0, max: 100, description: "Sampling temperature (paper: 0.7)." },
  "sampling.topP": { type: "number", min: 0, minExclusive: true, max: 1, description: "Nucleus sampling threshold (1 = off)." },
  "sampling.maxNewTokens": { type: "integer", min: 1, max: POSITIONS, description: "Most tokens a sampled rationale may have (paper: 300)." },
  "sampling.calculator": { type: "boolean", description: "Calculator-aided decoding: after <<expr= the result and >> are forced." },
  "sampling.batchSize": { type: "integer", min: 1, max: 65_536, description: "Sequences decoded together." },
  "pairs.maxPerQuestion": { type: "integer", min: 1, max: 1000, description: "Preference pairs kept per question: the least similar ones (paper: 3)." },
  "pairs.duplicateThreshold": { type: "number", min: 0, minExclusive: true, max: 1, description: "Token-set Jaccard similarity above which two rationales are duplicates (paper: 0.7)." },
  ...stageRules("dpo", "DPO"),
  // A beta of 0 would take DPO's loss nowhere.
  "dpo.beta": { type: "number", min: 0, minExclusive: true, max: 100, description: "DPO beta: how far the model may move from the reference (paper: 0.1)." },
  ...stageRules("sft", "SFT of each round"),
  "sft.from": {
    type: "string",
    enum: SFT_FROM,
    enumDescriptions: ["Restart every round's SFT from the base model (method.md, the paper).", "Go on from the round's SFT model (the warm-up model in round 1): cheaper, for models trained from scratch."],
    description: "SFT of each round: the model it starts from.",
  },
  "pseudoLabels.capPercentile": { type: "number", min: 0, minExclusive: true, max: 100, description: "Pseudo-labels per question are capped at this percentile of per-question counts (paper: 90)." },
  "eval.passSamples": { type: "integer", min: 0, max: 1000, zero: "greedy accuracy only", description: "Samples per question for pass@k, at the sampling temperature." },
  "eval.passK": { type: "integer", min: 1, max: 1000, description: "k of pass@k: at most eval.passSamples." },
  "eval.maxQuestions": { type: "integer", min: 0, max: MAX_QUESTIONS, zero: "all", description: "Evaluate at most this many questions per split." },
};

/** What each group holds, for the schema's hover on the group's key. */
export const SETTING_GROUPS: { readonly [G in SettingGroup]: string } = {
  data: "The data set: training and test files, and the splits taken from them.",
  model: "The model: a new one trained from scratch (its sizes) or a Hugging Face model folder, and its prompt format.",
  engine: "The compute engine and where it runs.",
  warmup: "Warm-up SFT (round 0): supervised fine-tuning on the data set's gold rationales.",
  sampling: "Sampling rationales from the model, for the DPO step and for pseudo-labels.",
  pairs: "Preference pairs built from the DPO step's samples.",
  dpo: "The DPO step of each round.",
  sft: "The SFT step of each round, on the gold data and the pseudo-labels.",
  pseudoLabels: "Pseudo-labels: right, de-duplicated samples the SFT step trains on.",
  eval: "Evaluation on the dev and test splits.",
};

export function settingRule(path: string): SettingRule | undefined {
  return Object.hasOwn(SETTINGS, path) ? SETTINGS[path as SettingPath] : undefined;
}

const number = (n: number): string => n.toLocaleString("en-US");

/**
 * Why a value is outside its setting's range, or null when it is inside: "must be between 1 and 256, not 0",
 * "must be positive, not 0", "must not be negative (0 means: no limit), not -1".
 */
export function rangeProblem(rule: SettingRule, v: number): string | null {
  const { min, max } = rule;
  const low = min !== undefined && (rule.minExclusive ? v <= min : v < min);
  const high = max !== undefined && (rule.maxExclusive ? v >= max : v > max);
  if (!low && !high) return null;
  if (low && min === 0) return `must ${rule.minExclusive ? "be positive" : `not be negative${rule.zero ? ` (0 means: ${rule.zero})` : ""}`}, not ${v}`;
  return `must be ${rangeText(rule)}, not ${v}`;
}

/** "between 1 and 256", "above 0 and at most 100", "at least 0 and below 1", "above 0", "exactly 1". */
export function rangeText(rule: SettingRule): string {
  const { min, max } = rule;
  const lower = min === undefined ? null : rule.minExclusive ? `above ${number(min)}` : `at least ${number(min)}`;
  const upper = max === undefined ? null : rule.maxExclusive ? `below ${number(max)}` : `at most ${number(max)}`;
  if (min !== undefined && min === max) return `exactly ${number(min)}`;
  if (min !== undefined && max !== undefined && !rule.minExclusive && !rule.maxExclusive) return `between ${number(min)} and ${number(max)}`;
  return [lower, upper].filter(Boolean).join(" and ");
}
