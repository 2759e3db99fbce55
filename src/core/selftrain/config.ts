import type { TrainSettings } from "../train/trainer";
import type { PromptFormatSetting } from "../model/promptFormat";
import { MODEL_LIMITS } from "../model/config";

/**
 * The run's settings (.selftrain/config.json): one typed config with documented defaults. Method defaults
 * are the paper's (method.md); model and optimiser sizes default to a small model a CPU trains in minutes,
 * since the paper's (Flan-T5, Llama) do not fit a laptop. A pretrained model (model.init a folder) starts from
 * the paper's Llama settings instead (pretrainedTraining). Written beside every checkpoint and metrics file.
 */

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
  mode: "dpo-st" | "st";
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
    name: "auto" | "tfjs" | "onnxruntime";
    /** TensorFlow.js backend, or "auto". */
    tfBackend: "auto" | "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu" | "webgpu";
    /** ONNX Runtime execution provider: "cpu", "webgpu" (any GPU through Vulkan, Metal or Direct3D 12) or "cuda". */
    executionProvider: "cpu" | "webgpu" | "cuda";
    /** ONNX Runtime intra-op threads (0 = one per core). */
    threads: number;
  };
  warmup: StageTraining;
  sampling: {
    /** Rationales per question for the DPO step (paper: 5). */
    dpoSamples: number;
    /** Rationales per question for pseudo-labels (paper: K = 3). */
    sftSamples: number;
    temperature: number;
    topP: number;
    maxNewTokens: number;
    calculator: boolean;
    batchSize: number;
  };
  pairs: { maxPerQuestion: number; duplicateThreshold: number };
  dpo: StageTraining & { beta: number };
  /**
   * `from`: "base" restarts every iteration's SFT from the base model (method.md, step 7); "previous" goes on
   * from the round's SFT model (the warm-up for round 1), a cheaper variant for models trained from scratch.
   */
  sft: StageTraining & { from: "base" | "previous" };
  pseudoLabels: { capPercentile: number };
  eval: {
    /** Samples per question for pass@k at the sampling temperature (0 = greedy accuracy only). */
    passSamples: number;
    passK: number;
    /** Evaluate on at most this many questions per split (0 = all). */
    maxQuestions: number;
  };
}

export const CONFIG_FORMAT_VERSION = 1;

/**
 * The defaults for a model.init: "new" (a small model trained from scratch, at the high rates it learns at in
 * minutes) or a model folder, which gets pretrainedTraining() instead: those rates would wreck a pretrained model.
 * `selftrain init`, "Initialize Workspace" and parseConfig (for settings a config.json leaves out) all start here.
 */
export function defaultConfig(init = "new"): SelfTrainConfig {
  const c: SelfTrainConfig = {
    formatVersion: CONFIG_FORMAT_VERSION,
    mode: "dpo-st",
    seed: 0,
    data: { train: "data/train.jsonl", test: "data/test.jsonl", devSize: 200, testSize: 500, maxTrainQuestions: 0 },
    model: { init: "new", vocabSize: 512, hiddenSize: 128, intermediateSize: 352, layers: 4, heads: 4, kvHeads: 2, maxPositions: 512, promptFormat: "auto", allowHighLearningRate: false },
    engine: { name: "auto", tfBackend: "auto", executionProvider: "cpu", threads: 0 },
    warmup: { epochs: 8, steps: 0, batchSize: 32, microBatchSize: 16, learningRate: 3e-3, warmupRatio: 0.1, maxLength: 320, maxPromptLength: 256 },
    sampling: { dpoSamples: 5, sftSamples: 3, temperature: 0.7, topP: 1, maxNewTokens: 300, calculator: true, batchSize: 64 },
    pairs: { maxPerQuestion: 3, duplicateThreshold: 0.7 },
    dpo: { epochs: 0, steps: 150, batchSize: 32, microBatchSize: 16, learningRate: 1e-5, warmupRatio: 0.1, maxLength: 320, maxPromptLength: 256, beta: 0.1 },
    sft: { epochs: 8, steps: 0, batchSize: 32, microBatchSize: 16, learningRate: 3e-3, warmupRatio: 0.1, maxLength: 320, maxPromptLength: 256, from: "base" },
    pseudoLabels: { capPercentile: 90 },
    eval: { passSamples: 5, passK: 5, maxQuestions: 0 },
  };
  if (!isPretrained(init)) return c;
  return { ...c, model: { ...c.model, init }, ...pretrainedTraining() };
}

/** model.init names a folder (a pretrained checkpoint) rather than "new". */
export function isPretrained(init: string): boolean {
  return init !== "new";
}

/** Above this, a learning rate on a pretrained model needs model.allowHighLearningRate. */
export const PRETRAINED_MAX_LEARNING_RATE = 1e-3;

/**
 * The training settings for a pretrained checkpoint (docs/pretrained-defaults.md has the sources). From the paper's
 * Llama column (method.md): DPO lr 3e-7 and beta 0.1 for 100 steps, SFT for 2 epochs, warm-up ratio 0.03; from its
 * public code (TianduoWang/DPO-ST, exp_config/llama): sequences of at most 640 tokens, prompts of at most 256.
 * Ours: batches of 32 instead of the paper's 128 on 8 GPUs (micro-batches of 4 sequences, or 2 pairs, keep a 0.5B
 * model's SFT and DPO peaks alike and within a workstation's memory), and SFT at 1e-5, the paper's 2e-5 scaled by
 * √(32/128) for the smaller batch and in the range used to fine-tune 0.1–2B instruct models without undoing them.
 */
export function pretrainedTraining(): Pick<SelfTrainConfig, "warmup" | "dpo" | "sft"> {
  const sft = { epochs: 2, steps: 0, batchSize: 32, microBatchSize: 4, learningRate: 1e-5, warmupRatio: 0.03, maxLength: 640, maxPromptLength: 256 };
  return {
    warmup: { ...sft },
    dpo: { epochs: 0, steps: 100, batchSize: 32, microBatchSize: 2, learningRate: 3e-7, warmupRatio: 0.03, maxLength: 640, maxPromptLength: 256, beta: 0.1 },
    sft: { ...sft, from: "base" },
  };
}

/** A learning rate as people write it: 3e-7, not 3e-7's decimal 0.0000003. */
function rate(n: number): string {
  return n.toExponential().replace("e+", "e");
}

/**
 * The one line `selftrain init` prints about the defaults it started from and why, e.g. "settings for a pretrained
 * model (model.init is a folder): DPO lr 3e-7, beta 0.1; SFT lr 1e-5, 2 epochs; max length 640, prompt 256: see
 * docs/pretrained-defaults.md". Read from the config, so it says what was written.
 */
export function defaultsNote(c: SelfTrainConfig): string {
  const lengths = `max length ${c.sft.maxLength}, prompt ${c.sft.maxPromptLength > 0 ? c.sft.maxPromptLength : "unlimited"}`;
  const sft = `SFT lr ${rate(c.sft.learningRate)}, ${c.sft.steps > 0 ? `${c.sft.steps} steps` : `${c.sft.epochs} epochs`}`;
  const dpo = `DPO lr ${rate(c.dpo.learningRate)}, beta ${c.dpo.beta}`;
  return isPretrained(c.model.init)
    ? `settings for a pretrained model (model.init is a folder): ${dpo}; ${sft}; ${lengths}: see docs/pretrained-defaults.md`
    : `settings for a model trained from scratch (model.init "new"): ${sft}; ${dpo}; ${lengths}`;
}

/** A stage's settings in a few words: "lr 1e-5, 2 epochs, batch 32 sequences in micro-batches of 4, warm-up ratio 0.03". */
function describeStage(s: StageTraining, unit: string): string {
  const length = s.steps > 0 ? `${s.steps} steps` : `${s.epochs} epochs`;
  return `lr ${rate(s.learningRate)}, ${length}, batch ${s.batchSize} ${unit} in micro-batches of ${s.microBatchSize}, warm-up ratio ${s.warmupRatio}`;
}

/** The training settings as lines, as `selftrain model inspect` and "Use a model folder…" show them. */
export function describeTraining(c: SelfTrainConfig): string[] {
  const prompt = (s: StageTraining): string => (s.maxPromptLength > 0 ? `, prompts cut to their last ${s.maxPromptLength} when longer` : "");
  return [
    `warm-up     ${describeStage(c.warmup, "sequences")}`,
    `DPO         ${describeStage(c.dpo, "pairs")}, beta ${c.dpo.beta}`,
    `SFT         ${describeStage(c.sft, "sequences")}, from the ${c.sft.from === "base" ? "base" : "previous"} model`,
    `lengths     at most ${c.sft.maxLength} tokens (DPO ${c.dpo.maxLength})${prompt(c.sft)}`,
  ];
}

const ENUMS: Record<string, readonly string[]> = {
  mode: ["dpo-st", "st"],
  "engine.name": ["auto", "tfjs", "onnxruntime"],
  "engine.tfBackend": ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu", "webgpu"],
  "engine.executionProvider": ["cpu", "webgpu", "cuda"],
  "sft.from": ["base", "previous"],
  "model.promptFormat": ["auto", "plain", "chat"],
};
/** Settings that must be whole numbers (the others of type number may be fractional). */
const FRACTIONAL = /(learningRate|warmupRatio|temperature|topP|beta|duplicateThreshold|capPercentile)$/;

/** An invalid setting, named by its path: `sft.learningRate must be a number, not "fast"`. */
export class ConfigError extends Error {}

/**
 * Reads a config (from JSON) over the defaults. Every field is checked against the default's type; unknown
 * fields are errors too (a misspelt setting must not be silently ignored).
 */
export function parseConfig(raw: unknown, source = "config.json"): SelfTrainConfig {
  // A config that names a model folder and leaves a training setting out gets the pretrained model's default.
  const out = defaultConfig(initOf(raw));
  merge(out as unknown as Record<string, unknown>, raw, "", source);
  checkRanges(out, source);
  return out;
}

/** model.init as a raw config gives it, "new" when it gives none (a wrong type is merge's to report). */
function initOf(raw: unknown): string {
  const model = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)["model"] : undefined;
  const init = typeof model === "object" && model !== null ? (model as Record<string, unknown>)["init"] : undefined;
  return typeof init === "string" ? init : "new";
}

function merge(target: Record<string, unknown>, raw: unknown, path: string, source: string): void {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: ${path || "the config"} must be an object`);
  for (const [key, value] of Object.entries(raw)) {
    const at = path ? `${path}.${key}` : key;
    if (key === "//" || key.startsWith("$")) continue; // comments and $schema
    if (!(key in target)) throw new ConfigError(`${source}: unknown setting "${at}"`);
    const def = target[key];
    if (typeof def === "object" && def !== null) {
      merge(def as Record<string, unknown>, value, at, source);
      continue;
    }
    const want = typeof def;
    if (typeof value !== want) throw new ConfigError(`${source}: ${at} must be a ${want}, not ${JSON.stringify(value)}`);
    if (want === "number" && (!Number.isFinite(value) || (!FRACTIONAL.test(at) && !Number.isInteger(value)))) {
      throw new ConfigError(`${source}: ${at} must be a ${FRACTIONAL.test(at) ? "finite number" : "whole number"}, not ${JSON.stringify(value)}`);
    }
    const allowed = ENUMS[at];
    if (allowed && !allowed.includes(value as string)) throw new ConfigError(`${source}: ${at} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, not ${JSON.stringify(value)}`);
    target[key] = value;
  }
}

/** Questions a data setting may count: far above any word-problem set this trains on (GSM8K has 7,473, MetaMathQA 395K). */
const MAX_QUESTIONS = 10_000_000;
/**
 * Stage limits: a million steps or a thousand epochs is days of compute on any machine this runs on. Learning
 * rates have only their lower bound (the checks above): a rate that diverges fails its stage with the loss named.
 */
const STAGE_RANGES = { epochs: [0, 1000], steps: [0, 1_000_000], batchSize: [1, 65_536], maxLength: [8, MODEL_LIMITS.max_position_embeddings], maxPromptLength: [0, MODEL_LIMITS.max_position_embeddings] } as const;

/**
 * Every numeric setting's range, [min, max] inclusive (dpo.beta exclusive of 0), checked when config.json is read
 * so that a typo fails there, naming the setting, rather than minutes later inside a stage with an engine's message
 * (or after allocating gigabytes). The model sizes admit every family we build, up to the limits a model folder's
 * config.json has (MODEL_LIMITS: 256 layers, hidden 32,768, a vocabulary of 1,048,576, …).
 */
const RANGES: Record<string, readonly [number, number]> = {
  // The Rng takes `seed | 0`: a larger seed would wrap onto another's sequence.
  seed: [0, 2 ** 31 - 1],
  "data.devSize": [0, MAX_QUESTIONS],
  "data.testSize": [0, MAX_QUESTIONS],
  "data.maxTrainQuestions": [0, MAX_QUESTIONS],
  // A new model's BPE vocabulary holds the 256 byte symbols and 3 special tokens at least (bpeTrainer).
  "model.vocabSize": [259, MODEL_LIMITS.vocab_size],
  "model.hiddenSize": [2, MODEL_LIMITS.hidden_size],
  "model.intermediateSize": [1, MODEL_LIMITS.intermediate_size],
  "model.layers": [1, MODEL_LIMITS.num_hidden_layers],
  "model.heads": [1, MODEL_LIMITS.num_attention_heads],
  "model.kvHeads": [1, MODEL_LIMITS.num_key_value_heads],
  // At least a training sequence's minimum length; below the stages' maxLength is refused further down.
  "model.maxPositions": [8, MODEL_LIMITS.max_position_embeddings],
  // ONNX Runtime starts every intra-op thread it is asked for: 100,000 took the worker to 7 GB and never got to a
  // step. The largest machines have a few hundred hardware threads (2 × 128-core EPYC: 512); the runner warns of
  // more threads than this machine has cores.
  "engine.threads": [0, 512],
  ...Object.fromEntries((["warmup", "dpo", "sft"] as const).flatMap((stage) => Object.entries(STAGE_RANGES).map(([k, r]) => [`${stage}.${k}`, r]))),
  "dpo.beta": [0, 100],
  "sampling.dpoSamples": [1, 1000],
  "sampling.sftSamples": [1, 1000],
  "sampling.temperature": [0, 100],
  "sampling.maxNewTokens": [1, MODEL_LIMITS.max_position_embeddings],
  "sampling.batchSize": [1, 65_536],
  "pairs.maxPerQuestion": [1, 1000],
  "eval.passSamples": [0, 1000],
  "eval.passK": [1, 1000],
  "eval.maxQuestions": [0, MAX_QUESTIONS],
};
/** The largest new model (model.init "new"): 2B parameters, far beyond what trains from scratch on one machine. */
const MAX_NEW_MODEL_PARAMETERS = 2_000_000_000;

/** Ranges open at their minimum: a beta of 0 would take DPO's loss nowhere. */
const OPEN_AT_MIN = /beta$/;

/** A setting's value by its path ("model.layers"). */
function settingAt(c: SelfTrainConfig, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (typeof o === "object" && o !== null ? (o as Record<string, unknown>)[k] : undefined), c);
}

function checkRanges(c: SelfTrainConfig, source: string): void {
  const fail = (path: string, why: string): never => {
    throw new ConfigError(`${source}: ${path} ${why}`);
  };
  if (c.formatVersion < 1) fail("formatVersion", "must be at least 1");
  if (c.formatVersion > CONFIG_FORMAT_VERSION) {
    fail("formatVersion", `is ${c.formatVersion}, newer than this version of Self-Training Studio reads (${CONFIG_FORMAT_VERSION}); update the extension`);
  }
  for (const stage of ["warmup", "dpo", "sft"] as const) {
    const s = c[stage];
    if (s.steps < 0) fail(`${stage}.steps`, "must not be negative (0 means: from epochs)");
    if (s.epochs < 0) fail(`${stage}.epochs`, "must not be negative");
    if (s.batchSize < 1) fail(`${stage}.batchSize`, "must be at least 1");
    if (s.microBatchSize < 1 || s.microBatchSize > s.batchSize) fail(`${stage}.microBatchSize`, `must be between 1 and ${stage}.batchSize (${s.batchSize})`);
    if (!(s.learningRate > 0)) fail(`${stage}.learningRate`, "must be positive");
    if (s.warmupRatio < 0 || s.warmupRatio >= 1) fail(`${stage}.warmupRatio`, "must be in [0, 1)");
    if (s.maxLength < 8) fail(`${stage}.maxLength`, "must be at least 8");
    if (s.maxPromptLength < 0) fail(`${stage}.maxPromptLength`, "must not be negative (0 means: no limit)");
    if (isPretrained(c.model.init) && !c.model.allowHighLearningRate && s.learningRate > PRETRAINED_MAX_LEARNING_RATE) {
      fail(`${stage}.learningRate`, `is ${s.learningRate}, above 1e-3 on a pretrained model (model.init is a folder): it destroys a pretrained model in a few steps; set model.allowHighLearningRate to true to use it on purpose`);
    }
    if (stage !== "dpo" && s.epochs < 1 && s.steps < 1) fail(`${stage}.epochs`, "or steps must be at least 1");
  }
  if (c.dpo.steps < 1) fail("dpo.steps", "must be at least 1");
  if (!(c.dpo.beta > 0)) fail("dpo.beta", "must be positive");
  if (c.sampling.dpoSamples < 1) fail("sampling.dpoSamples", "must be at least 1");
  if (c.sampling.sftSamples < 1) fail("sampling.sftSamples", "must be at least 1");
  if (c.sampling.temperature < 0) fail("sampling.temperature", "must not be negative");
  if (!(c.sampling.topP > 0 && c.sampling.topP <= 1)) fail("sampling.topP", "must be in (0, 1]");
  if (c.pairs.duplicateThreshold <= 0 || c.pairs.duplicateThreshold > 1) fail("pairs.duplicateThreshold", "must be in (0, 1]");
  if (c.pseudoLabels.capPercentile <= 0 || c.pseudoLabels.capPercentile > 100) fail("pseudoLabels.capPercentile", "must be in (0, 100]");
  if (c.eval.passSamples > 0 && c.eval.passK > c.eval.passSamples) fail("eval.passK", `must not exceed eval.passSamples (${c.eval.passSamples})`);
  if (c.engine.threads < 0) fail("engine.threads", "must be 0 (one per core) or more");
  if (c.model.promptFormat === "chat" && c.model.init === "new") fail("model.promptFormat", `is "chat", but a new model (model.init "new") has no chat template; use "auto" or "plain"`);
  for (const [path, [min, max]] of Object.entries(RANGES)) {
    const v = settingAt(c, path) as number;
    const low = OPEN_AT_MIN.test(path) ? v <= min : v < min;
    if (low || v > max) fail(path, `must be ${OPEN_AT_MIN.test(path) ? "above" : "between"} ${min.toLocaleString("en-US")} and ${OPEN_AT_MIN.test(path) ? "at most " : ""}${max.toLocaleString("en-US")}, not ${v}`);
  }
  if (c.model.hiddenSize % c.model.heads !== 0) fail("model.hiddenSize", `must be divisible by model.heads (${c.model.heads})`);
  if (c.model.heads % c.model.kvHeads !== 0) fail("model.heads", `must be a multiple of model.kvHeads (${c.model.kvHeads})`);
  if ((c.model.hiddenSize / c.model.heads) % 2 !== 0) fail("model.hiddenSize", `/ model.heads is ${c.model.hiddenSize / c.model.heads}, but rotary embeddings need an even head dimension`);
  if (!isPretrained(c.model.init)) {
    // A new model is built with maxPositions positions: every training sequence (cut to its stage's maxLength) must fit.
    const longest = (["warmup", "dpo", "sft"] as const).reduce<"warmup" | "dpo" | "sft">((a, b) => (c[b].maxLength > c[a].maxLength ? b : a), "warmup");
    if (c.model.maxPositions < c[longest].maxLength) fail("model.maxPositions", `is ${c.model.maxPositions}, shorter than ${longest}.maxLength (${c[longest].maxLength}): the model could not take its training sequences`);
    // Each size in range can still multiply into a model no machine holds, whose initialisation would allocate for
    // minutes before failing: counted here (arithmetic only) against what a model trained from scratch can be.
    const m = c.model;
    const perLayer = 2 * m.hiddenSize + 2 * m.hiddenSize * m.hiddenSize + 2 * m.hiddenSize * (m.hiddenSize / m.heads) * m.kvHeads + 3 * m.hiddenSize * m.intermediateSize;
    const parameters = m.vocabSize * m.hiddenSize + m.layers * perLayer + m.hiddenSize;
    if (parameters > MAX_NEW_MODEL_PARAMETERS) {
      fail("model", `sizes give a new model of ${parameters.toLocaleString("en-US")} parameters, above the ${MAX_NEW_MODEL_PARAMETERS.toLocaleString("en-US")} a model trained from scratch may have (float32 weights and Adam moments alone: 24 GB); lower model.layers, model.hiddenSize, model.intermediateSize or model.vocabSize`);
    }
  }
}
