/**
 * The shape of .selftrain/config.json: the settings' types and the values a choice may take. Apart from the rules
 * (configRules.ts: ranges, descriptions, the schema) and the parser (config.ts), so neither imports the other back.
 */
import type { DecodeSettings } from "../sample/sampler";
import type { TrainSettings } from "../train/trainer";
import type { PromptFormatSetting } from "../model/promptFormat";

export const MODES = ["dpo-st", "st"] as const;
export const ENGINE_NAMES = ["auto", "tfjs", "onnxruntime"] as const;
export const TF_BACKENDS = ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu", "webgpu"] as const;
export const EXECUTION_PROVIDERS = ["cpu", "webgpu", "cuda"] as const;
export const SFT_FROM = ["base", "previous"] as const;

/**
 * A training stage's settings: the trainer's (steps, batch and micro-batch size, learning rate, warm-up
 * ratio, maximum length) plus epochs and the prompt limit. SFT: `steps` 0 means "from epochs"; DPO uses steps only.
 */
export type StageTraining = Omit<TrainSettings, "seed" | "optimizer"> & {
  epochs: number;
  /**
   * TRL's `max_prompt_length`: when a prompt and its (longest) completion do not fit `maxLength`, the prompt keeps
   * only its last this many tokens, so the completion keeps its room instead of being cut away behind a long
   * prompt (train/batching.ts `limitPrompt`). Sequences that fit are untouched. 0: no limit.
   */
  maxPromptLength: number;
};

export interface SelfTrainConfig {
  formatVersion: number;
  /** "dpo-st" (the method) or "st" (plain self-training, the paper's baseline). */
  mode: (typeof MODES)[number];
  seed: number;
  data: {
    /** GSM8K-style JSONL, relative to the workspace folder or absolute. */
    train: string;
    /** Held-out test file; empty means take `testSize` questions from train. */
    test: string;
    devSize: number;
    testSize: number;
    /** Use only the first N training questions (0 = all), for quick runs. */
    maxTrainQuestions: number;
  };
  model: {
    /** "new" trains a model from scratch; otherwise a local Hugging Face Llama folder. */
    init: string;
    vocabSize: number;
    hiddenSize: number;
    intermediateSize: number;
    layers: number;
    heads: number;
    kvHeads: number;
    maxPositions: number;
    /**
     * How questions and rationales are laid out for the model: "auto" uses the model's chat template when its
     * tokenizer_config.json has one, else the plain `Question: …\nAnswer: ` format; "plain" always the plain
     * format; "chat" the template, an error for a model without one. See model/promptFormat.ts.
     */
    promptFormat: PromptFormatSetting;
    /**
     * A learning rate above 1e-3 on a pretrained model (model.init a folder) is refused unless this is true: rates
     * that train a new model in minutes destroy a pretrained one in a few steps (docs/pretrained-defaults.md).
     */
    allowHighLearningRate: boolean;
  };
  engine: {
    /** "auto" picks the faster engine on the machine. */
    name: (typeof ENGINE_NAMES)[number];
    /** TensorFlow.js backend, or "auto". */
    tfBackend: (typeof TF_BACKENDS)[number];
    /** ONNX Runtime execution provider: "cpu", "webgpu" (any GPU through Vulkan, Metal or Direct3D 12) or "cuda". */
    executionProvider: (typeof EXECUTION_PROVIDERS)[number];
    /** ONNX Runtime intra-op threads (0 = one per core). */
    threads: number;
  };
  warmup: StageTraining;
  sampling: DecodeSettings & {
    /** Rationales per question for the DPO step (paper: 5). */
    dpoSamples: number;
    /** Rationales per question for pseudo-labels (paper: K = 3). */
    sftSamples: number;
  };
  pairs: { maxPerQuestion: number; duplicateThreshold: number };
  dpo: StageTraining & { beta: number };
  /**
   * `from`: "base" restarts every iteration's SFT from the base model (method.md, step 7); "previous" goes on
   * from the round's SFT model (the warm-up for round 1), a cheaper variant for models trained from scratch.
   */
  sft: StageTraining & { from: (typeof SFT_FROM)[number] };
  pseudoLabels: { capPercentile: number };
  eval: {
    /** Samples per question for pass@k at the sampling temperature (0 = greedy accuracy only). */
    passSamples: number;
    passK: number;
    /** Evaluate on at most this many questions per split (0 = all). */
    maxQuestions: number;
  };
}
