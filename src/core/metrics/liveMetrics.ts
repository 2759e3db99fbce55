/**
 * The dashboard's live side: metric records that arrive from the worker while a stage runs (they reach
 * metrics.jsonl only when the stage ends), merged into the model read from the files, and what is running now.
 * Every record names its run, so nothing here has to guess which run a record belongs to.
 */
import { RunStore, isInterrupted } from "../store/runStore";
import { selftrainDir } from "../selftrain/workspace";
import { ROUND_WARNING_KINDS, STEP_WARNING_KINDS, roundWarnings, sortWarnings, stageWarnings } from "./metricWarnings";
import { MAX_POINTS, addStep, downsampleStage, emptyStageSteps, roundRow, sortSteps, type DashboardModel } from "./dashboardData";
import { readMetricRecord, type MetricRecord, type TrainStage, type TrainStepRecord } from "../../shared/metricRecord";
import type { RoundRow, RunMetrics, StageSteps, StepPoint } from "../../shared/dashboardProtocol";
import type { StageName } from "../../shared/runTypes";

/** New points of one stage, as the webview appends them. */
export interface LiveAppend {
  round: number;
  stage: TrainStage;
  totalSteps: number | null;
  /** The stage started again (step 1 after later steps): the earlier points are gone. */
  reset: boolean;
  points: StepPoint[];
}

export interface LiveMerge {
  appended: LiveAppend[];
  /** A round summary arrived: the rounds table changed. */
  roundsChanged: boolean;
  /** Records that could not be used, one reason each. */
  rejected: string[];
}

/**
 * Merges records that arrive live (the worker's metric events) into a run, in place: steps are appended to
 * their stage's curves (a repeat of a step already held is skipped; step 1 after later steps restarts the
 * stage), a round summary replaces its row, and the warnings of what changed are computed again. A curve
 * that grows past twice `maxPoints` is downsampled back to `maxPoints`, so a long live stage stays bounded.
 */
export function mergeLiveRecords(run: RunMetrics, records: readonly unknown[], maxPoints = MAX_POINTS): LiveMerge {
  const appended: LiveAppend[] = [];
  const rejected: string[] = [];
  const touched = new Set<StageSteps>();
  let roundsChanged = false;
  for (const raw of records) {
    let m: MetricRecord | null;
    try {
      m = readMetricRecord(raw, run.runId);
    } catch (e) {
      rejected.push(e instanceof Error ? e.message : String(e));
      continue;
    }
    if (m === null) continue;
    run.engine = m.engine ?? run.engine;
    run.device = m.device ?? run.device;
    // Each record says whether its engine was a fallback: the latest wins, so a later run without one clears it.
    if (m.engine !== null) run.engineFallback = m.engineFallback;
    if (m.kind === "round") {
      const fresh = roundRow(m.round, run.mode, m, {});
      const i = run.rounds.findIndex((r) => r.round === m.round);
      const old = i >= 0 ? run.rounds[i]! : undefined;
      // What only the manifest knows (the number of test questions) stays.
      const row = old ? (Object.fromEntries(Object.entries(fresh).map(([k, v]) => [k, v ?? old[k as keyof RoundRow]])) as unknown as RoundRow) : fresh;
      if (i >= 0) run.rounds[i] = row;
      else {
        run.rounds.push(row);
        run.rounds.sort((a, b) => a.round - b.round);
      }
      roundsChanged = true;
      continue;
    }
    let s = run.steps.find((x) => x.round === m.round && x.stage === m.stage);
    if (!s) {
      s = emptyStageSteps(m.round, m.stage, m.totalSteps);
      run.steps.push(s);
      sortSteps(run.steps);
    }
    let last = appended[appended.length - 1];
    if (!last || last.round !== s.round || last.stage !== s.stage) {
      last = { round: s.round, stage: s.stage, totalSteps: s.totalSteps, reset: false, points: [] };
      appended.push(last);
    }
    if (s.recorded > 0 && m.step <= s.lastStep) {
      if (m.step > 1) continue;
      Object.assign(s, emptyStageSteps(s.round, s.stage, m.totalSteps));
      last.reset = true;
      last.points = [];
    }
    last.points.push(addStep(s, m));
    last.totalSteps = s.totalSteps;
    touched.add(s);
  }
  for (const s of touched) {
    run.warnings = run.warnings.filter((w) => !(w.round === s.round && w.stage === s.stage && STEP_WARNING_KINDS.includes(w.kind)));
    run.warnings.push(...stageWarnings(run.runId, s));
    if (Object.values(s.series).some((v) => v.x.length > 2 * maxPoints)) downsampleStage(s, maxPoints);
  }
  if (roundsChanged) {
    run.warnings = run.warnings.filter((w) => !ROUND_WARNING_KINDS.includes(w.kind));
    run.warnings.push(...roundWarnings(run.runId, run.mode, run.rounds));
  }
  sortWarnings(run.warnings);
  return { appended: appended.filter((a) => a.points.length > 0 || a.reset), roundsChanged, rejected };
}

/**
 * The step records of stages still running, per run: they are not in metrics.jsonl yet, so they are merged
 * again into each fresh read of the files, until the stage's own records are there.
 */
export class LiveSteps {
  private readonly held = new Map<string, TrainStepRecord[]>();

  hold(records: readonly MetricRecord[]): void {
    for (const r of records) {
      if (r.kind !== "train") continue;
      const list = this.held.get(r.runId) ?? [];
      list.push(r);
      this.held.set(r.runId, list);
    }
  }

  /** Merges what the files do not have yet into a freshly read model, and forgets what they now have. */
  mergeInto(model: DashboardModel): void {
    for (const [runId, records] of this.held) {
      const run = model.runs.find((r) => r.runId === runId);
      const unwritten = records.filter((rec) => !run?.steps.some((s) => s.round === rec.round && s.stage === rec.stage));
      if (unwritten.length === 0) this.held.delete(runId);
      else this.held.set(runId, unwritten);
      if (run && unwritten.length > 0) mergeLiveRecords(run, unwritten);
    }
  }

  clear(): void {
    this.held.clear();
  }
}

/**
 * The stage running now, for the dashboard's status line: the latest started among the stages the manifests
 * mark running whose process is alive (a killed run's stage is interrupted, not running).
 */
export async function findRunningStage(workspace: string): Promise<{ runId: string; round: number; stage: StageName } | null> {
  const dir = selftrainDir(workspace);
  let found: { runId: string; round: number; stage: StageName; startedAt: string } | null = null;
  for (const id of RunStore.list(dir)) {
    let store: RunStore;
    try {
      store = await RunStore.open(dir, id);
    } catch {
      continue;
    }
    for (const r of store.manifest.rounds) {
      for (const [stage, st] of Object.entries(r.stages) as Array<[StageName, NonNullable<(typeof r.stages)[StageName]>]>) {
        if (st.state !== "running" || isInterrupted(st)) continue;
        const startedAt = st.startedAt ?? "";
        if (found === null || startedAt > found.startedAt) found = { runId: id, round: r.round, stage, startedAt };
      }
    }
  }
  return found && { runId: found.runId, round: found.round, stage: found.stage };
}
