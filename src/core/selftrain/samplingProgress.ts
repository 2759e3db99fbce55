import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeJsonAtomic } from "../store/atomic";
import { readJsonl, replaceJsonl } from "../store/jsonl";
import type { Example } from "../data/example";
import type { SampleRecord } from "../../shared/runTypes";

/**
 * What a sampling stage has finished, beside its file (`samples-dpo.jsonl.progress.json`), rewritten atomically after
 * every chunk of questions: a stage stopped by a cancel, a crash or a kill goes on from there.
 */
export interface SamplingProgress {
  /** The settings and model it was started with; continuing needs the same. */
  key: string;
  /**
   * The engine and device that sampled the finished chunks ("onnxruntime on cpu"): two engines draw different
   * samples from the same seed, so a stage's records all come from one (absent in files of earlier versions).
   */
  engine?: string;
  chunks: number;
  records: number;
  tokens: number;
  correct: number;
  ms: number;
}

export function progressPath(samplesFile: string): string {
  return `${samplesFile}.progress.json`;
}

export function saveSamplingProgress(samplesFile: string, p: SamplingProgress): Promise<void> {
  return writeJsonAtomic(progressPath(samplesFile), p);
}

export function dropSamplingProgress(samplesFile: string): void {
  rmSync(progressPath(samplesFile), { force: true });
}

/**
 * Where a sampling stage stopped: its finished chunks, checked against the questions they should hold (n samples
 * each, `perChunk` questions a chunk), with the file cut back to them. `restart` says why it starts from the first
 * question instead (null: nothing was recorded).
 */
export async function loadSamplingProgress(samplesFile: string, key: string, engine: string, questions: readonly Example[], perChunk: number, n: number): Promise<{ progress: SamplingProgress } | { restart: string | null }> {
  const file = progressPath(samplesFile);
  if (!existsSync(file) || !existsSync(samplesFile)) return { restart: null };
  let p: SamplingProgress;
  try {
    p = JSON.parse(readFileSync(file, "utf8")) as SamplingProgress;
  } catch {
    return { restart: "its progress file cannot be read" };
  }
  if (p.key !== key) return { restart: "the settings or the model changed since it was started" };
  if (p.engine !== engine) {
    const was = p.engine === undefined ? "its progress does not say which engine sampled it" : `it was sampled by ${p.engine}`;
    return { restart: `${was} and this process runs ${engine} (a stage's samples all come from one engine)` };
  }
  const { records } = await readJsonl<SampleRecord>(samplesFile);
  const kept = records.slice(0, p.records);
  const expected = questions.slice(0, p.chunks * perChunk);
  const matches = kept.length === expected.length * n && kept.every((r, j) => r.questionId === expected[Math.floor(j / n)]!.id && r.index === j % n);
  if (!matches) return { restart: "its records do not match the recorded progress" };
  // Records past the last finished chunk (a chunk cut short) are dropped: that chunk is sampled again whole.
  if (records.length !== kept.length) await replaceJsonl(samplesFile, kept);
  return { progress: p };
}
