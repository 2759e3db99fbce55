import { sampleRationales, type DecodeSettings, type Sample } from "../sample/sampler";
import { extractFinalAnswer, answersMatch } from "../data/answerCheck";
import { checkArithmetic } from "../data/annotations";
import { contentHash } from "../store/hash";
import { meanPassAtK } from "./passAtK";
import type { Example } from "../data/example";
import type { ComputeEngine } from "../engine/computeEngine";
import type { PromptFormat } from "../model/promptFormat";
import type { SampleRecord } from "../../shared/runTypes";

/** A sampled rationale as the run store keeps it: answer checked, arithmetic checked, content-hashed. */
export function toSampleRecord(e: Example, s: Sample, round: number, index: number): SampleRecord {
  const answer = extractFinalAnswer(s.text)?.value ?? null;
  return {
    hash: contentHash(e.question, s.text),
    questionId: e.id,
    question: e.question,
    rationale: s.text,
    answer,
    gold: e.answer,
    correct: answer !== null && answersMatch(answer, e.answer),
    logProb: s.logProb,
    calculatorCalls: s.calculatorCalls,
    arithmeticErrors: checkArithmetic(s.text).filter((a) => a.verdict.kind === "wrong").length,
    finished: s.finished,
    round,
    index,
  };
}

export interface EvalSettings {
  /** config.json's sampling settings: the pass@k samples take them whole; the greedy answer, all but the temperature. */
  decode: DecodeSettings;
  passSamples: number;
  passK: number;
  seed: number;
  shouldStop?: () => boolean;
  /** The model's EOS ids beside the prompt format's stop ids (see SamplingOptions.stopIds). */
  stopIds?: readonly number[];
}

export interface EvalResult {
  accuracy: number;
  passAtK: number | null;
  records: SampleRecord[];
  tokens: number;
  ms: number;
}

/** Greedy accuracy, and pass@k from `passSamples` samples per question with the sampling settings (temperature, top-p). */
export async function evaluateSplit(engine: ComputeEngine, format: PromptFormat, examples: readonly Example[], round: number, s: EvalSettings, onProgress?: (done: number, total: number) => void): Promise<EvalResult> {
  const started = Date.now();
  const records: SampleRecord[] = [];
  let tokens = 0;
  const chunk = Math.max(1, Math.floor(s.decode.batchSize / Math.max(1, s.passSamples)));
  let correct = 0;
  const counts: Array<{ n: number; c: number }> = [];
  for (let i = 0; i < examples.length; i += chunk) {
    const part = examples.slice(i, i + chunk);
    const questions = part.map((e) => e.question);
    const greedy = await sampleRationales(engine, format, questions, { ...s.decode, temperature: 0, n: 1, seed: s.seed + i, shouldStop: s.shouldStop, stopIds: s.stopIds });
    const sampled = s.passSamples > 0
      ? await sampleRationales(engine, format, questions, { ...s.decode, n: s.passSamples, seed: s.seed + 7919 + i, shouldStop: s.shouldStop, stopIds: s.stopIds })
      : null;
    part.forEach((e, j) => {
      const g = toSampleRecord(e, greedy[j]![0]!, round, 0);
      records.push(g);
      tokens += greedy[j]![0]!.tokens.length;
      if (g.correct) correct++;
      if (sampled) {
        const rs = sampled[j]!.map((smp, k) => toSampleRecord(e, smp, round, k + 1));
        tokens += sampled[j]!.reduce((a, smp) => a + smp.tokens.length, 0);
        counts.push({ n: rs.length, c: rs.filter((r) => r.correct).length });
      }
    });
    onProgress?.(Math.min(examples.length, i + chunk), examples.length);
  }
  return {
    accuracy: examples.length ? correct / examples.length : 0,
    passAtK: s.passSamples > 0 ? meanPassAtK(counts, s.passK) : null,
    records,
    tokens,
    ms: Date.now() - started,
  };
}
