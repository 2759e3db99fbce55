import type { DecodeSettings } from "../sample/sampler";
import type { TrainSettings } from "../train/trainer";
import type { PromptFormatSetting } from "../model/promptFormat";
import { CONFIG_FORMAT_VERSION, SETTINGS, rangeProblem, settingRule } from "./configRules";
import type { ENGINE_NAMES, EXECUTION_PROVIDERS, MODES, SFT_FROM, TF_BACKENDS } from "./configRules";
import { nearestWord } from "../util/nearestWord";

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

/**
 * An invalid setting: `reason` names it by its path (`sft.learningRate must be a number, not "fast"`), `setting` is
 * that path (null when the whole file is wrong), and the message leads with the file: `<source>: <reason>`.
 */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly setting: string | null,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}

/**
 * Reads a config (from JSON) over the defaults, checked against configRules.ts's SETTINGS: each setting's type,
 * whole numbers, allowed values and range, then what ties settings together. Unknown settings are errors too (a
 * misspelt setting must not be silently ignored), with the setting it most likely meant.
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

/** Keys every level of config.json may have besides its settings: "//" comments and "$schema". */
function isIgnoredKey(key: string): boolean {
  return key === "//" || key.startsWith("$");
}

function merge(target: Record<string, unknown>, raw: unknown, path: string, source: string): void {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(source, path || null, `${path || "the config"} must be an object`);
  for (const [key, value] of Object.entries(raw)) {
    const at = path ? `${path}.${key}` : key;
    if (isIgnoredKey(key)) continue;
    if (!Object.hasOwn(target, key)) throw new ConfigError(source, at, unknownSetting(at, Object.keys(target)));
    const def = target[key];
    if (typeof def === "object" && def !== null) {
      merge(def as Record<string, unknown>, value, at, source);
      continue;
    }
    const rule = settingRule(at)!;
    const want = rule.type === "integer" ? "number" : rule.type;
    const fail = (why: string): never => {
      throw new ConfigError(source, at, `${at} ${why}`);
    };
    if (typeof value !== want) fail(`must be a ${want}, not ${JSON.stringify(value)}`);
    if (want === "number" && (!Number.isFinite(value) || (rule.type === "integer" && !Number.isInteger(value)))) {
      fail(`must be a ${rule.type === "integer" ? "whole number" : "finite number"}, not ${JSON.stringify(value)}`);
    }
    if (rule.enum && !rule.enum.includes(value as string)) fail(`must be one of ${rule.enum.map((a) => `"${a}"`).join(", ")}, not ${JSON.stringify(value)}`);
    target[key] = value;
  }
}

/**
 * "sampling.maxNewToken is not a setting; did you mean maxNewTokens?": the nearest name beside it, else a setting
 * of that name elsewhere ("did you mean dpo.beta?"), else the names that are there.
 */
function unknownSetting(at: string, siblings: string[]): string {
  const key = at.split(".").at(-1)!;
  const near = nearestWord(key, siblings);
  if (near !== null) return `${at} is not a setting; did you mean ${near}?`;
  const paths = Object.keys(SETTINGS);
  const elsewhere = nearestWord(key, paths.map((p) => p.split(".").at(-1)!));
  if (elsewhere !== null) {
    const matches = paths.filter((p) => p.split(".").at(-1) === elsewhere);
    return `${at} is not a setting; did you mean ${matches.length === 1 ? matches[0] : `${matches.slice(0, -1).join(", ")} or ${matches.at(-1)}`}?`;
  }
  const parent = at.includes(".") ? at.slice(0, at.lastIndexOf(".")) : null;
  return `${at} is not a setting; ${parent ? `${parent} has` : "the settings are"} ${siblings.filter((s) => s !== "formatVersion").join(", ")}`;
}

/** A setting's value by its path ("model.layers"). */
function settingAt(c: SelfTrainConfig, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (typeof o === "object" && o !== null ? (o as Record<string, unknown>)[k] : undefined), c);
}

/** The largest new model (model.init "new"): 2B parameters, far beyond what trains from scratch on one machine. */
const MAX_NEW_MODEL_PARAMETERS = 2_000_000_000;

/**
 * Every numeric setting's range (SETTINGS), then what ties settings together, checked when config.json is read so
 * that a typo fails there, naming the setting, rather than minutes later inside a stage with an engine's message
 * (or after allocating gigabytes).
 */
function checkRanges(c: SelfTrainConfig, source: string): void {
  const fail = (path: string, why: string): never => {
    throw new ConfigError(source, path, `${path} ${why}`);
  };
  if (c.formatVersion < 1) fail("formatVersion", "must be at least 1");
  if (c.formatVersion > CONFIG_FORMAT_VERSION) {
    fail("formatVersion", `is ${c.formatVersion}, newer than this version of Self-Training Studio reads (${CONFIG_FORMAT_VERSION}); update the extension`);
  }
  for (const [path, rule] of Object.entries(SETTINGS)) {
    const v = settingAt(c, path);
    const problem = typeof v === "number" ? rangeProblem(rule, v) : null;
    if (problem !== null) fail(path, problem);
  }
  for (const stage of ["warmup", "dpo", "sft"] as const) {
    const s = c[stage];
    if (s.microBatchSize > s.batchSize) fail(`${stage}.microBatchSize`, `must be between 1 and ${stage}.batchSize (${s.batchSize})`);
    if (isPretrained(c.model.init) && !c.model.allowHighLearningRate && s.learningRate > PRETRAINED_MAX_LEARNING_RATE) {
      fail(`${stage}.learningRate`, `is ${s.learningRate}, above 1e-3 on a pretrained model (model.init is a folder): it destroys a pretrained model in a few steps; set model.allowHighLearningRate to true to use it on purpose`);
    }
    if (stage !== "dpo" && s.epochs < 1 && s.steps < 1) fail(`${stage}.epochs`, "or steps must be at least 1");
  }
  if (c.eval.passSamples > 0 && c.eval.passK > c.eval.passSamples) fail("eval.passK", `must not exceed eval.passSamples (${c.eval.passSamples})`);
  if (c.model.promptFormat === "chat" && c.model.init === "new") fail("model.promptFormat", `is "chat", but a new model (model.init "new") has no chat template; use "auto" or "plain"`);
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
