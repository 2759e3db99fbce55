/**
 * The metrics dashboard's model, read from the run store: for every run a rounds table and, per training
 * stage, the per-step curves; plus the warnings. Reading never fails on one bad line or one broken run: what
 * cannot be read becomes a warning, and the rest is shown.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { RunStore } from "../store/runStore";
import { completeLines, readTail } from "../store/jsonlLines";
import { selftrainDir } from "../selftrain/workspace";
import { roundStages } from "../selftrain/stages";
import { downsample } from "./downsample";
import { roundWarnings, sortWarnings, stageWarnings, STEP_WARNING_KINDS } from "./metricWarnings";
import { STEP_METRICS, TRAIN_STAGES, readMetricRecord, type MetricRecord, type RoundSummary, type StepMetric, type TrainStage, type TrainStepRecord } from "../../shared/metricRecord";
import type { DashboardState, MetricWarning, RoundRow, RunMetrics, RunStatus, StageSteps, StepPoint } from "../../shared/dashboardProtocol";
import type { RoundRecord, RunMode, StageName } from "../../shared/runTypes";

/** Points kept per curve: more than a chart a few hundred pixels wide can show apart. */
export const MAX_POINTS = 1000;

export interface DashboardModel {
  runs: RunMetrics[];
  /** Runs that could not be read at all, one sentence each. */
  problems: string[];
}

function finite(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export function emptyStageSteps(round: number, stage: TrainStage, totalSteps: number | null = null): StageSteps {
  return { round, stage, totalSteps, recorded: 0, lastStep: 0, series: {}, nonFinite: {} };
}

/** Appends one step to a stage's curves, counting the values that are not numbers; returns what was kept. */
export function addStep(s: StageSteps, m: TrainStepRecord): StepPoint {
  const point: StepPoint = { step: m.step, values: {} };
  for (const k of STEP_METRICS) {
    const v = m[k];
    if (v === undefined) continue;
    if (v === null) {
      const bad = (s.nonFinite[k] ??= { count: 0, firstStep: m.step });
      bad.count++;
      bad.firstStep = Math.min(bad.firstStep, m.step);
      continue;
    }
    const series = (s.series[k] ??= { x: [], y: [] });
    series.x.push(m.step);
    series.y.push(v);
    point.values[k] = v;
  }
  s.recorded++;
  s.lastStep = Math.max(s.lastStep, m.step);
  if (m.totalSteps !== null) s.totalSteps = m.totalSteps;
  return point;
}

export function downsampleStage(s: StageSteps, maxPoints: number): void {
  for (const k of Object.keys(s.series) as StepMetric[]) s.series[k] = downsample(s.series[k]!, maxPoints);
}

const stageOrder = (s: TrainStage): number => TRAIN_STAGES.indexOf(s);

export function sortSteps(list: StageSteps[]): void {
  list.sort((a, b) => a.round - b.round || stageOrder(a.stage) - stageOrder(b.stage));
}

/** A round's row: its summary record where there is one, else the counts its finished stages wrote to the manifest. */
export function roundRow(round: number, mode: RunMode, summary: RoundSummary | undefined, stages: RoundRecord["stages"]): RoundRow {
  const has = new Set<StageName>(roundStages(round, mode));
  const s = (k: keyof RoundSummary): number | null => summary?.[k] ?? null;
  const c = (stage: StageName, k: string): number | null => finite(stages[stage]?.counts?.[k]);
  const pairs = has.has("pairs");
  const labels = has.has("pseudo-labels");
  const kept = c("pseudo-labels", "kept");
  const questions = c("pseudo-labels", "questions");
  const sampled = [c("sample-dpo", "samples"), c("sample-sft", "samples")].filter((v): v is number => v !== null);
  const right = [c("sample-dpo", "correct"), c("sample-sft", "correct")].filter((v): v is number => v !== null);
  return {
    round,
    devAccuracy: s("devAccuracy") ?? c("eval", "devAccuracy"),
    testAccuracy: s("testAccuracy") ?? c("eval", "testAccuracy"),
    devPassAtK: s("devPassAtK") ?? c("eval", "devPassAtK"),
    testPassAtK: s("testPassAtK") ?? c("eval", "testPassAtK"),
    k: s("k"),
    testQuestions: c("eval", "testQuestions"),
    correctSamples: round === 0 || right.length === 0 ? null : right.reduce((a, v) => a + v, 0),
    // Round 0 (the warm-up) samples nothing, builds no pairs and keeps no labels: "—", not 0.
    samples: round === 0 ? null : s("samples") ?? (sampled.length ? sampled.reduce((a, v) => a + v, 0) : null),
    positives: pairs ? s("positives") ?? c("pairs", "positives") : null,
    negatives: pairs ? s("negatives") ?? c("pairs", "negatives") : null,
    pairs: pairs ? s("pairs") ?? c("pairs", "pairs") : null,
    pseudoLabels: labels ? s("pseudoLabels") ?? kept : null,
    distinctPerQuestion: labels ? s("distinctPerQuestion") ?? (kept !== null && questions ? kept / questions : null) : null,
    rewardAccuracy: pairs ? s("rewardAccuracy") ?? c("dpo", "rewardAccuracy") : null,
    rewardMargin: pairs ? s("rewardMargin") ?? c("dpo", "rewardMargin") : null,
    tokensPerSecond: s("tokensPerSecond"),
    wallMs: s("wallMs"),
    evaluated: summary !== undefined,
  };
}

/** Python's json writes NaN and Infinity bare; read them as what JSON.stringify writes for them (null). */
const BARE_NON_FINITE = /(?<=[:,[]\s*)-?(?:NaN|Infinity)(?=\s*[,}\]])/g;

/** The complete lines of a metrics file, parsed; a line that is not JSON goes to `bad` and is skipped. */
async function eachMetricLine(path: string, each: (value: unknown, line: number) => void, bad: (line: number, reason: string) => void): Promise<void> {
  const tail = await readTail(path);
  if (tail === null) return;
  for await (const { text: lineText, line } of completeLines(path, tail)) {
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch {
      try {
        value = JSON.parse(lineText.replace(BARE_NON_FINITE, "null"));
      } catch (e) {
        bad(line, `not valid JSON (${e instanceof Error ? e.message : String(e)})`);
        continue;
      }
    }
    each(value, line);
  }
}

/** Reads one run: its manifest (for mode and stage counts) and every round's metrics.jsonl. */
export async function readRunMetrics(dir: string, runId: string, maxPoints = MAX_POINTS): Promise<RunMetrics> {
  const store = await RunStore.open(dir, runId);
  const manifest = store.manifest;
  const warnings: MetricWarning[] = [];
  // Keyed by step so that a record written twice (an interrupted attempt's leftovers) counts once, the later winning.
  const steps = new Map<string, { round: number; stage: TrainStage; byStep: Map<number, TrainStepRecord> }>();
  const summaries = new Map<number, RoundSummary>();
  let engine: string | null = null;
  let device: string | null = null;
  let engineFallback: string | null = null;
  let summaryFallback: string | null = null;
  let summaryEngine: string | null = null;
  let summaryDevice: string | null = null;
  for (const { round } of manifest.rounds) {
    const bad: string[] = [];
    await eachMetricLine(store.path(round, "metrics.jsonl"), (value, line) => {
      let m: MetricRecord | null;
      try {
        m = readMetricRecord(value, runId);
      } catch (e) {
        bad.push(`line ${line}: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      if (m === null) return;
      if (m.kind === "round") {
        summaries.set(m.round, m);
        summaryEngine = m.engine ?? summaryEngine;
        summaryDevice = m.device ?? summaryDevice;
        if (m.engine !== null) summaryFallback = m.engineFallback;
        return;
      }
      const key = `${m.round}:${m.stage}`;
      const entry = steps.get(key) ?? { round: m.round, stage: m.stage, byStep: new Map<number, TrainStepRecord>() };
      entry.byStep.set(m.step, m);
      steps.set(key, entry);
      engine = m.engine ?? engine;
      device = m.device ?? device;
      if (m.engine !== null) engineFallback = m.engineFallback;
    }, (line, reason) => bad.push(`line ${line}: ${reason}`));
    if (bad.length > 0) {
      warnings.push({
        id: `unreadable:${runId}:${round}::`, kind: "unreadable", severity: "warning", runId, round, stage: null,
        text: `Run ${runId}, round ${round}: metrics.jsonl has ${bad.length} unreadable line${bad.length === 1 ? "" : "s"}, left out of the charts (${bad[0]}${bad.length > 1 ? "; …" : ""}).`,
      });
    }
  }

  const stageSteps: StageSteps[] = [];
  for (const { round, stage, byStep } of steps.values()) {
    const s = emptyStageSteps(round, stage);
    for (const step of [...byStep.keys()].sort((a, b) => a - b)) addStep(s, byStep.get(step)!);
    // Warnings see every step; the charts get a downsampled copy.
    warnings.push(...stageWarnings(runId, s));
    downsampleStage(s, maxPoints);
    stageSteps.push(s);
  }
  sortSteps(stageSteps);

  const rounds: RoundRow[] = [];
  const stepRounds = new Set(stageSteps.map((s) => s.round));
  for (const r of manifest.rounds) {
    const started = Object.values(r.stages).some((st) => st !== undefined && st.state !== "pending");
    if (!started && !summaries.has(r.round) && !stepRounds.has(r.round)) continue;
    rounds.push(roundRow(r.round, manifest.mode, summaries.get(r.round), r.stages));
  }
  warnings.push(...roundWarnings(runId, manifest.mode, rounds));

  return {
    runId,
    mode: manifest.mode,
    createdAt: manifest.createdAt,
    // The step records name the engine that trained; the round summary's name is a fallback only.
    engine: engine ?? summaryEngine,
    device: device ?? summaryDevice,
    engineFallback: engine !== null ? engineFallback : summaryFallback,
    rounds,
    warnings: sortWarnings(warnings),
    steps: stageSteps,
  };
}

/** Runs already read, by id, with the size and time of the files they came from. */
export type RunCache = Map<string, { signature: string; run: RunMetrics }>;

/** Changes whenever the manifest or a round's metrics.jsonl changes (the writers replace or append, so size or time moves). */
async function runSignature(dir: string, runId: string): Promise<string> {
  const runDir = join(dir, "runs", runId);
  const mark = async (file: string): Promise<string> => {
    try {
      const st = await stat(file);
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return "-";
    }
  };
  const parts = [await mark(join(runDir, "manifest.json"))];
  let names: string[] = [];
  try {
    names = (await readdir(runDir)).filter((n) => /^round-\d+$/.test(n)).sort();
  } catch {
    // A run folder that vanished: the manifest's "-" already says so.
  }
  for (const name of names) parts.push(`${name}=${await mark(join(runDir, name, "metrics.jsonl"))}`);
  return parts.join("|");
}

/**
 * Every run of a workspace, oldest first. A run that cannot be read is named in `problems`, not fatal. With a
 * cache, a run whose files have not changed since it was last read is not parsed again: a finished stage of one
 * run then costs the reading of that run only.
 */
export async function readDashboard(workspace: string, maxPoints = MAX_POINTS, cache?: RunCache): Promise<DashboardModel> {
  const dir = selftrainDir(workspace);
  const runs: RunMetrics[] = [];
  const problems: string[] = [];
  const ids = RunStore.list(dir);
  for (const id of ids) {
    try {
      const signature = cache ? await runSignature(dir, id) : "";
      const hit = cache?.get(id);
      // A copy: the caller merges live records into what it gets, and the cache must stay what the files say.
      if (hit && hit.signature === signature) {
        runs.push(structuredClone(hit.run));
        continue;
      }
      const run = await readRunMetrics(dir, id, maxPoints);
      cache?.set(id, { signature, run: structuredClone(run) });
      runs.push(run);
    } catch (e) {
      cache?.delete(id);
      problems.push(`Run ${id} is not shown: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (cache) for (const id of [...cache.keys()]) if (!ids.includes(id)) cache.delete(id);
  return { runs, problems };
}

/** What the webview gets: every run's table and warnings, the shown run's curves (the default: the newest run). */
export function dashboardState(model: DashboardModel, selectedRunId: string | null, status: RunStatus): DashboardState {
  const selected = model.runs.find((r) => r.runId === selectedRunId) ?? model.runs[model.runs.length - 1] ?? null;
  return {
    runs: model.runs.map(({ steps: _steps, ...summary }) => summary),
    selected,
    status,
    problems: model.problems,
  };
}
