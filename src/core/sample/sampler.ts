import { Rng } from "../util/rng";
import { yieldNow } from "../util/yieldNow";
import { CancelledError } from "../util/cancel";
import { pendingCalculation, calculatorCompletion } from "../data/annotations";
import { promptFormatFor, type PromptFormat } from "../model/promptFormat";
import type { TextTokenizer } from "../tokenizer/tokenizer";
import type { ComputeEngine } from "../engine/computeEngine";
import { chooseToken } from "./tokenChoice";

/**
 * How a rationale is decoded: config.json's `sampling` settings that reach the token choice, one type from the file
 * to the sampler (the sampling stages, evaluation's greedy and pass@k samples all take it whole).
 */
export interface DecodeSettings {
  /** 0 means greedy. */
  temperature: number;
  /** Nucleus sampling: the smallest set of most probable tokens holding this much of the mass (1: all). */
  topP: number;
  maxNewTokens: number;
  /** Calculator-aided decoding: after `<<expr=`, force the result and `>>`. */
  calculator: boolean;
  /** Rows decoded together. */
  batchSize: number;
}

/** The decode settings out of a larger settings object (config.json's `sampling` holds the sample counts too). */
export function decodeSettings(s: DecodeSettings): DecodeSettings {
  return { temperature: s.temperature, topP: s.topP, maxNewTokens: s.maxNewTokens, calculator: s.calculator, batchSize: s.batchSize };
}

export interface SamplingOptions extends Omit<DecodeSettings, "topP" | "batchSize">, Partial<Pick<DecodeSettings, "topP" | "batchSize">> {
  /** Samples per prompt. */
  n: number;
  seed: number;
  /** Checked between decoding steps; when true, sampling stops and throws CancelledError. */
  shouldStop?: () => boolean;
  /**
   * More ids that end a rationale, besides the prompt format's (EOS, the chat end-of-turn token): the model's
   * EOS ids from config.json and generation_config.json (`stopTokenIds` of a checkpoint).
   */
  stopIds?: readonly number[];
}

export interface CalculatorCall {
  expression: string;
  /** The forced text (result and `>>`), or null when the expression had no result (division by zero). */
  forced: string | null;
}

export interface Sample {
  text: string;
  tokens: number[];
  /** Sum of the model's log-probabilities (temperature 1) of the tokens it chose; forced tokens excluded. */
  logProb: number;
  calculatorCalls: CalculatorCall[];
  /** True when it ended with a stop token (EOS, end of turn) rather than at maxNewTokens. */
  finished: boolean;
}

/**
 * Samples rationales for questions; result[i] holds the n samples of question i. Prompts are built by the
 * prompt format; a bare tokenizer stands for its model's own format (`promptFormatFor(tokenizer, "auto")`).
 */
export async function sampleRationales(engine: ComputeEngine, format: PromptFormat | TextTokenizer, questions: readonly string[], o: SamplingOptions): Promise<Sample[][]> {
  const prompts = "encodePrompt" in format ? format : promptFormatFor(format);
  const tokenizer = prompts.tokenizer;
  const stop = new Set([...prompts.stopIds, ...(o.stopIds ?? [])]);
  const rng = new Rng(o.seed);
  const rows: Array<{ question: number; prompt: number[] }> = [];
  questions.forEach((q, i) => {
    const prompt = prompts.encodePrompt(q);
    for (let k = 0; k < o.n; k++) rows.push({ question: i, prompt });
  });
  const out: Sample[][] = questions.map(() => []);
  const batchSize = o.batchSize ?? 32;
  for (let start = 0; start < rows.length; start += batchSize) {
    const chunk = rows.slice(start, start + batchSize);
    const samples = await decodeBatch(engine, tokenizer, stop, chunk.map((r) => r.prompt), o, rng);
    chunk.forEach((r, i) => out[r.question]!.push(samples[i]!));
  }
  return out;
}

interface RowState {
  tokens: number[];
  logProb: number;
  forced: number[];
  calls: CalculatorCall[];
  done: boolean;
  finished: boolean;
}

async function decodeBatch(engine: ComputeEngine, tokenizer: TextTokenizer, stop: ReadonlySet<number>, prompts: number[][], o: SamplingOptions, rng: Rng): Promise<Sample[]> {
  const V = engine.config.vocab_size;
  const maxNew = Math.min(o.maxNewTokens, engine.config.max_position_embeddings - Math.max(...prompts.map((p) => p.length)));
  const rows: RowState[] = prompts.map(() => ({ tokens: [], logProb: 0, forced: [], calls: [], done: false, finished: false }));
  let { session, logits } = await engine.startDecoding(prompts, maxNew);
  try {
    for (let step = 0; step < maxNew; step++) {
      if (step % 8 === 0) await yieldNow();
      if (o.shouldStop?.()) throw new CancelledError();
      const next: number[] = [];
      rows.forEach((row, b) => {
        if (row.done) {
          next.push(engine.config.pad_token_id);
          return;
        }
        const l = logits.subarray(b * V, (b + 1) * V);
        let token: number;
        if (row.forced.length > 0) {
          token = row.forced.shift() as number;
        } else {
          // No top-k: it is not a setting (tokenChoice keeps it for its own tests).
          const choice = chooseToken(l, o.temperature, o.topP ?? 1, 0, rng);
          token = choice.token;
          row.logProb += choice.logProb;
        }
        next.push(token);
        if (stop.has(token)) {
          row.done = true;
          row.finished = true;
          return;
        }
        row.tokens.push(token);
        if (o.calculator && row.forced.length === 0 && tokenizer.decode([token]).includes("=")) {
          const expression = pendingCalculation(tokenizer.decode(row.tokens));
          if (expression !== null) {
            const forced = calculatorCompletion(expression);
            row.calls.push({ expression, forced });
            if (forced !== null) row.forced = tokenizer.encode(forced);
          }
        }
      });
      if (rows.every((r) => r.done)) break;
      logits = await session.step(next);
    }
  } finally {
    session.dispose();
  }
  return rows.map((r) => ({ text: tokenizer.decode(r.tokens), tokens: r.tokens, logProb: r.logProb, calculatorCalls: r.calls, finished: r.finished }));
}
