import { findAnnotations } from "./annotations";
import { Rng } from "../util/rng";

/**
 * A seeded subset of a GSM8K-style JSONL file by the number of calculator steps (`<<expr=result>>` annotations)
 * in each gold rationale: the problems a small model can start on. Lines are kept as written (every field, in
 * the file's order), so the subset is the data set's own records, not a re-encoding of them.
 */
export interface StepSubsetOptions {
  minSteps: number;
  maxSteps: number;
  /** Lines to keep; fewer when fewer qualify. */
  count: number;
  seed: number;
}

export interface StepSubset {
  lines: string[];
  /** Lines with minSteps … maxSteps steps in the whole file. */
  eligible: number;
  /** Lines of the file that are records (blank lines are not). */
  total: number;
}

/** The number of calculator annotations in a record's `answer`, or null for a line that is not such a record. */
export function calculatorSteps(line: string): number | null {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof record !== "object" || record === null) return null;
  const answer = (record as Record<string, unknown>)["answer"];
  return typeof answer === "string" ? findAnnotations(answer).length : null;
}

export function pickByCalculatorSteps(text: string, o: StepSubsetOptions): StepSubset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const eligible: number[] = [];
  lines.forEach((line, i) => {
    const n = calculatorSteps(line);
    if (n !== null && n >= o.minSteps && n <= o.maxSteps) eligible.push(i);
  });
  const chosen = new Rng(o.seed).shuffle(eligible).slice(0, Math.max(0, o.count)).sort((a, b) => a - b);
  return { lines: chosen.map((i) => lines[i]!), eligible: eligible.length, total: lines.length };
}
