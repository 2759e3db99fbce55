import { CONFIG_FORMAT_VERSION, SETTINGS, rangeProblem, settingRule } from "./configRules";
import type { SelfTrainConfig, StageTraining } from "./configTypes";
import { nearestWord } from "../util/nearestWord";

/**
 * The run's settings (.selftrain/config.json): one typed config with documented defaults. Method defaults
 * are the paper's (method.md); model and optimiser sizes default to a small model a CPU trains in minutes,
 * since the paper's (Flan-T5, Llama) do not fit a laptop. A pretrained model (model.init a folder) starts from
 * the paper's Llama settings instead (pretrainedTraining). Written beside every checkpoint and metrics file.
 */


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
