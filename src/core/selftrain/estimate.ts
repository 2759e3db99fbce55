import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parameterCount } from "../model/architecture";
import { tinyConfig, validateConfig } from "../model/config";
import { nextRound, readWorkspaceConfig, selftrainDir } from "./workspace";
import { parseConfig } from "./config";
import type { SelfTrainConfig } from "./configTypes";
import { RunStore } from "../store/runStore";
import { promptFormatFor } from "../model/promptFormat";
import { loadTokenizer } from "../tokenizer/tokenizer";
import type { RunManifest, StageName } from "../../shared/runTypes";

/**
 * How long the next "Start round" takes, before it starts: the work it does (tokens trained on, tokens sampled,
 * tokens only scored) from the settings and the data, divided by how fast this machine goes — measured by an
 * earlier run of the workspace where there is one, otherwise the rates the reference machine measured (2 cores,
 * the demo's model), scaled to the model's size. A guess for the newcomer's "about N minutes", not a promise:
 * the progress bar's ETA is measured as the round runs.
 */

export interface DataStats {
  /** Questions the run trains on (after dev/test are split off and any cap). */
  trainQuestions: number;
  /** Questions evaluated (dev + test, after the eval cap). */
  evalQuestions: number;
  /** Mean tokens of a question with its rationale, as the model reads them (its prompt format and tokenizer). */
  exampleTokens: number;
  /** Mean tokens of a rationale alone: what a run's training stages count as their `tokens`. */
  completionTokens: number;
}

export interface Work {
  /** Tokens through a training step (forward and backward). */
  trainTokens: number;
  /** Tokens through a forward pass only (DPO's reference log-probs). */
  scoreTokens: number;
  /** Tokens decoded, one step each. */
  sampleTokens: number;
  stages: number;
}

export interface Rates {
  trainTokensPerSecond: number;
  sampleTokensPerSecond: number;
  /** Where they come from: "run 2026-11-26-a on this machine" or "the reference machine, scaled to 0.8M parameters". */
  basis: string;
}

/** The reference machine (2 cores, ONNX Runtime on the CPU), the demo's 0.8M-parameter model, quiet. */
const REFERENCE = { params: 830_000, trainTokensPerSecond: 4500, sampleTokensPerSecond: 5000 };
/**
 * Throughput falls slower than the parameter count grows: small models are bound by per-step overheads. 0.75
 * fits both points measured here: the demo's model and SmolLM2-135M's shape (about 80 training tokens/s).
 */
const SIZE_EXPONENT = 0.75;
/** Starting the engine, loading and saving a checkpoint: per stage. */
const STAGE_OVERHEAD_S = 3;
/** Characters per token of GSM8K-style text, for BPE vocabularies from 512 up (measured on the demo's data: 4.2). */
const CHARS_PER_TOKEN = 4.2;

export function ratesForSize(params: number): Rates {
  const scale = Math.min(1, Math.pow(REFERENCE.params / params, SIZE_EXPONENT));
  return {
    trainTokensPerSecond: REFERENCE.trainTokensPerSecond * scale,
    sampleTokensPerSecond: REFERENCE.sampleTokensPerSecond * scale,
    basis: `rates measured on a 2-core reference machine, scaled to ${formatParams(params)} parameters`,
  };
}

/**
 * Rates measured by a run's finished stages (their `tokens` and `ms` counts), scaled from the model that run
 * trained to this one. Null when the run has no finished training or sampling stage.
 */
export function ratesFromRun(m: RunManifest, runParams: number, params: number, sequencePerCompletion = 1): Rates | null {
  const sum = (names: readonly StageName[]) => {
    let tokens = 0, ms = 0;
    for (const r of m.rounds) {
      for (const n of names) {
        const c = r.stages[n]?.state === "done" ? r.stages[n]?.counts : undefined;
        if (c?.["tokens"] && c["ms"]) {
          tokens += c["tokens"];
          ms += c["ms"];
        }
      }
    }
    return ms > 0 ? (1000 * tokens) / ms : null;
  };
  const train = sum(["warmup", "sft", "dpo"]);
  const sample = sum(["sample-dpo", "sample-sft"]);
  if (train === null && sample === null) return null;
  const scale = Math.pow(runParams / params, SIZE_EXPONENT);
  const fallback = ratesForSize(params);
  return {
    // A run counts the rationale tokens it trained on; the estimate's work is whole sequences (prompt and all).
    trainTokensPerSecond: train === null ? fallback.trainTokensPerSecond : train * scale * sequencePerCompletion,
    sampleTokensPerSecond: sample === null ? fallback.sampleTokensPerSecond : sample * scale,
    basis: `rates measured by run ${m.runId} on this machine${runParams === params ? "" : `, scaled to ${formatParams(params)} parameters`}`,
  };
}

/** Training steps of a stage: its `steps`, or its epochs over the examples. */
function trainSteps(s: { steps: number; epochs: number; batchSize: number }, examples: number): number {
  return s.steps > 0 ? s.steps : s.epochs * Math.ceil(examples / s.batchSize);
}

/** One stage's work: what the per-stage estimate (and its check against a finished run) is made of. */
export interface StageWork extends Work {
  round: number;
  stage: StageName;
}

/** The work of the warm-up (when `warmup`) and of one round of the method, stage by stage, from the settings and the data. */
export function stageWork(c: SelfTrainConfig, d: DataStats, opts: { warmup: boolean; round: boolean }): StageWork[] {
  const t = d.exampleTokens;
  // A run counts the tokens it generates: about a rationale's length, at most maxNewTokens.
  const sampled = Math.min(d.completionTokens, c.sampling.maxNewTokens);
  const evalSamples = d.evalQuestions * (1 + c.eval.passSamples) * sampled;
  const out: StageWork[] = [];
  const add = (round: number, stage: StageName, w: Partial<Work>): void => {
    out.push({ round, stage, trainTokens: 0, scoreTokens: 0, sampleTokens: 0, stages: 1, ...w });
  };
  if (opts.warmup) {
    add(0, "warmup", { trainTokens: trainSteps(c.warmup, d.trainQuestions) * c.warmup.batchSize * t });
    add(0, "eval", { sampleTokens: evalSamples });
  }
  if (opts.round) {
    if (c.mode === "dpo-st") {
      add(1, "sample-dpo", { sampleTokens: d.trainQuestions * c.sampling.dpoSamples * sampled });
      add(1, "pairs", { stages: 0 });
      // Pairs: about 80% of the most a question can give (the demo: 3,436 of 4,200).
      const pairs = 0.8 * d.trainQuestions * Math.min(c.pairs.maxPerQuestion, c.sampling.dpoSamples);
      const steps = trainSteps(c.dpo, pairs);
      // The reference log-probs only of the pairs the steps draw (trainer.ts visitedRows).
      add(1, "dpo", { scoreTokens: Math.min(pairs, steps * c.dpo.batchSize) * 2 * t, trainTokens: steps * c.dpo.batchSize * 2 * t });
    }
    add(1, "sample-sft", { sampleTokens: d.trainQuestions * c.sampling.sftSamples * sampled });
    add(1, "pseudo-labels", { stages: 0 });
    // SFT on gold and pseudo-labels: about a third of the questions gain one (the demo: 437 of 1,400).
    add(1, "sft", { trainTokens: trainSteps(c.sft, d.trainQuestions * 1.3) * c.sft.batchSize * t });
    add(1, "eval", { sampleTokens: evalSamples });
  }
  return out;
}

/** The work of the warm-up (when `warmup`) and of one round of the method, summed over its stages. */
export function roundWork(c: SelfTrainConfig, d: DataStats, opts: { warmup: boolean; round: boolean }): Work {
  const w: Work = { trainTokens: 0, scoreTokens: 0, sampleTokens: 0, stages: 0 };
  for (const s of stageWork(c, d, opts)) {
    w.trainTokens += s.trainTokens;
    w.scoreTokens += s.scoreTokens;
    w.sampleTokens += s.sampleTokens;
    w.stages += s.stages;
  }
  return w;
}

export function estimateSeconds(w: Work, r: Rates): number {
  // A forward pass alone is about a third of a training step's work.
  return w.trainTokens / r.trainTokensPerSecond + w.scoreTokens / (3 * r.trainTokensPerSecond) + w.sampleTokens / r.sampleTokensPerSecond + w.stages * STAGE_OVERHEAD_S;
}

/** Examples the model's tokenizer reads for the mean lengths: enough for a mean, quick enough for every refresh. */
const TOKENIZED_EXAMPLES = 48;
const tokenCounts = new Map<string, { example: number; completion: number }>();

/**
 * Mean tokens of an example and of its rationale as the model reads them: its tokenizer and prompt format (a chat
 * template's system prompt and turn markers count too). Null for a new model (its tokenizer is trained when the run
 * starts) or a folder that cannot be read. Cached by folder, data file and their modification times.
 */
function modelTokenCounts(c: SelfTrainConfig, workspace: string, examples: ReadonlyArray<{ question: string; answer: string }>, trainFile: string, runBase: string | null): { example: number; completion: number } | null {
  if (examples.length === 0) return null;
  // A new model's tokenizer is trained when its run starts: the newest run's base folder holds it from then on.
  const dir = c.model.init === "new" ? runBase : resolve(workspace, c.model.init);
  if (dir === null) return null;
  const file = join(dir, "tokenizer.json");
  if (!existsSync(file)) return null;
  const key = `${dir}|${statSync(file).mtimeMs}|${trainFile}|${existsSync(trainFile) ? statSync(trainFile).mtimeMs : 0}|${c.model.promptFormat}`;
  const hit = tokenCounts.get(key);
  if (hit) return hit;
  try {
    const format = promptFormatFor(loadTokenizer(dir), c.model.promptFormat, dir);
    let all = 0, completion = 0;
    for (const e of examples) {
      const seq = format.encodeSequence(e.question, e.answer);
      all += seq.ids.length;
      completion += seq.ids.length - seq.promptLength;
    }
    const counts = { example: all / examples.length, completion: completion / examples.length };
    tokenCounts.set(key, counts);
    return counts;
  } catch {
    return null; // the estimate goes on from characters; the run itself says what is wrong with the folder
  }
}

/**
 * The data's sizes as a run splits it, from the files (the first 2,000 lines give the mean length). `runBase`: the
 * newest run's base model folder, whose tokenizer counts a new model's tokens once a run has trained it.
 */
export function dataStats(c: SelfTrainConfig, workspace: string, runBase: string | null = null): DataStats {
  const at = (p: string) => resolve(workspace, p);
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter((l) => l.trim()) : []);
  const train = lines(at(c.data.train));
  const testLines = c.data.test ? lines(at(c.data.test)).length : 0;
  const dev = Math.min(c.data.devSize, Math.floor(train.length / 4));
  const test = c.data.test ? testLines : Math.min(c.data.testSize, train.length - dev);
  let trainQuestions = Math.max(0, train.length - dev - (c.data.test ? 0 : test));
  if (c.data.maxTrainQuestions > 0) trainQuestions = Math.min(trainQuestions, c.data.maxTrainQuestions);
  const cap = (n: number) => (c.eval.maxQuestions > 0 ? Math.min(n, c.eval.maxQuestions) : n);
  let chars = 0, answerChars = 0;
  const examples: Array<{ question: string; answer: string }> = [];
  for (const l of train.slice(0, 2000)) {
    try {
      const e = JSON.parse(l) as { question?: unknown; answer?: unknown };
      const question = String(e.question ?? ""), answer = String(e.answer ?? "");
      chars += question.length + answer.length;
      answerChars += answer.length;
      examples.push({ question, answer });
    } catch {
      // a bad line: `check` reports it; the estimate goes on without it
    }
  }
  const n = examples.length;
  const tokens = modelTokenCounts(c, workspace, examples.slice(0, TOKENIZED_EXAMPLES), at(c.data.train), runBase);
  return {
    trainQuestions,
    evalQuestions: cap(dev) + cap(test),
    exampleTokens: tokens?.example ?? (n ? chars / n / CHARS_PER_TOKEN : 40),
    completionTokens: tokens?.completion ?? (n ? answerChars / n / CHARS_PER_TOKEN : 20),
  };
}

/** The model's parameter count: the settings' new model, or the config.json of the model folder. */
export function modelParameters(c: SelfTrainConfig, workspace: string): number {
  if (c.model.init === "new") {
    const m = c.model;
    return parameterCount(tinyConfig(m.vocabSize, { hidden_size: m.hiddenSize, intermediate_size: m.intermediateSize, num_hidden_layers: m.layers, num_attention_heads: m.heads, num_key_value_heads: m.kvHeads }));
  }
  const file = join(resolve(workspace, c.model.init), "config.json");
  return parameterCount(validateConfig(JSON.parse(readFileSync(file, "utf8")), file));
}

export interface NextRoundEstimate {
  seconds: number;
  /** "the warm-up and round 1" or "round 3". */
  what: string;
  basis: string;
}

/**
 * The estimate for the next Start Round in a workspace: what it runs (the warm-up first when the newest run
 * has none) and about how long, from the newest run's measured rates when it has any.
 */
export function estimateNextRound(c: SelfTrainConfig, workspace: string, newest: { manifest: RunManifest; config: SelfTrainConfig; base?: string } | null): NextRoundEstimate {
  const params = modelParameters(c, workspace);
  const warmupDone = newest?.manifest.rounds.some((r) => r.round === 0 && r.stages.warmup?.state === "done") ?? false;
  const next = newest ? Math.max(1, nextRound(newest.manifest)) : 1;
  let rates = ratesForSize(params);
  const runParams = (config: SelfTrainConfig): number => {
    try {
      return modelParameters(config, workspace);
    } catch {
      return params; // the run's model folder moved: assume the same size
    }
  };
  const data = dataStats(c, workspace, newest?.base ?? null);
  if (newest) rates = ratesFromRun(newest.manifest, runParams(newest.config), params, data.exampleTokens / Math.max(1, data.completionTokens)) ?? rates;
  const work = roundWork(c, data, { warmup: !warmupDone, round: true });
  return { seconds: estimateSeconds(work, rates), what: warmupDone ? `round ${next}` : "the warm-up and round 1", basis: rates.basis };
}

/** A job estimated at longer than this asks before it starts (issue 28). */
export const LONG_JOB_SECONDS = 3600;

/**
 * The question Start Round asks before a long job, or null for one that just starts: how long, on what basis, and
 * which settings make it shorter.
 */
export function longJobQuestion(e: NextRoundEstimate): { message: string; detail: string } | null {
  if (!(e.seconds > LONG_JOB_SECONDS)) return null;
  return {
    message: `${e.what[0]!.toUpperCase()}${e.what.slice(1)} will take ${formatEstimate(e.seconds)} on this machine. Start it?`,
    detail: `Estimated from ${e.basis}. To make it shorter, lower data.maxTrainQuestions, sampling.dpoSamples or sampling.sftSamples, dpo.steps, or the warm-up and SFT epochs in .selftrain/config.json. A stopped round resumes where it stopped.`,
  };
}

/** "about 6 minutes", "about 40 seconds", "about 2.5 hours". */
export function formatEstimate(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(10, Math.round(seconds / 10) * 10)} seconds`;
  const minutes = seconds / 60;
  if (minutes < 90) return `about ${Math.round(minutes)} minute${Math.round(minutes) === 1 ? "" : "s"}`;
  return `about ${(minutes / 60).toFixed(1)} hours`;
}

function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${Math.round(n / 1e3)}K`;
}

/** The estimate for a workspace as it is on disk: its config, its data and its newest run. */
export async function estimateWorkspace(workspace: string): Promise<NextRoundEstimate> {
  const c = readWorkspaceConfig(workspace);
  const dir = selftrainDir(workspace);
  const id = RunStore.newest(dir);
  let newest: { manifest: RunManifest; config: SelfTrainConfig; base: string } | null = null;
  if (id !== null) {
    const store = await RunStore.open(dir, id);
    const snapshot = store.path(0, "selftrain-config.json");
    let config = c;
    try {
      if (existsSync(snapshot)) config = parseConfig(JSON.parse(readFileSync(snapshot, "utf8")), snapshot);
    } catch {
      // an older run's settings no longer parse: measure it as if it had today's
    }
    newest = { manifest: store.manifest, config, base: join(store.dir, "base") };
  }
  return estimateNextRound(c, workspace, newest);
}
