/**
 * Warnings where the numbers look wrong. Pure functions of the dashboard model, so each rule is tested on
 * made-up curves. A rule speaks only when the evidence is more than noise: a trend must be significant,
 * "stuck" must last a window of steps, an accuracy drop must exceed what the evaluation's size explains.
 */
import type { MetricWarning, RoundRow, Series, StageSteps, WarningKind } from "../../shared/dashboardProtocol";
import type { StepMetric, TrainStage } from "../../shared/metricRecord";
import { stageLabel, type RunMode } from "../../shared/runTypes";

/** Below this a loss counts as zero: a DPO margin of ~7/beta, an SFT model certain of every target token. */
export const ZERO_LOSS = 1e-3;
/** A downward trend counts when its slope is this many standard errors below zero. */
const TREND_T = 2;
/** Two-sided 95%: an accuracy drop larger than this many standard errors of the difference is not noise. */
const Z_95 = 1.96;

/** Warnings that depend on one stage's steps; recomputed when that stage gets live steps. */
export const STEP_WARNING_KINDS: readonly WarningKind[] = ["chosen-falling", "reward-accuracy-stuck", "loss-zero", "non-finite"];

function where(runId: string, round: number | null, stage: TrainStage | null): string {
  return [`Run ${runId}`, round === null ? null : `round ${round}`, stage === null ? null : stageLabel(stage, true)].filter(Boolean).join(", ");
}

function warning(kind: WarningKind, severity: MetricWarning["severity"], runId: string, round: number | null, stage: TrainStage | null, text: string, key = ""): MetricWarning {
  return { id: [kind, runId, round ?? "", stage ?? "", key].join(":"), kind, severity, runId, round, stage, text: `${where(runId, round, stage)}: ${text}` };
}

/**
 * How many steps a condition must last before it is a pattern: 20, or a third of a short stage (at least 8),
 * so that a 24-step DPO is judged as well as a 150-step one.
 */
export function stepWindow(s: StageSteps): number {
  const length = Math.max(s.totalSteps ?? 0, s.lastStep);
  return Math.max(8, Math.min(20, Math.floor(length / 3)));
}

/** Index of the first point of the trailing run where `hold` is true, or null when the last point fails it. */
function trailingRun(s: Series, hold: (y: number) => boolean): number | null {
  let i = s.y.length;
  while (i > 0 && hold(s.y[i - 1]!)) i--;
  return i === s.y.length ? null : i;
}

/** Steps covered by points from..end (steps, not points: a downsampled series has fewer points). */
function spanSteps(s: Series, from: number): number {
  return s.x[s.x.length - 1]! - s.x[from]! + 1;
}

/** Least-squares slope and its t statistic (slope over its standard error); t is -Infinity for an exact fall. */
export function trend(x: readonly number[], y: readonly number[]): { slope: number; t: number } {
  const n = x.length;
  if (n < 3) return { slope: 0, t: 0 };
  const mx = x.reduce((a, v) => a + v, 0) / n;
  const my = y.reduce((a, v) => a + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i]! - mx) ** 2;
    sxy += (x[i]! - mx) * (y[i]! - my);
  }
  if (sxx === 0) return { slope: 0, t: 0 };
  const slope = sxy / sxx;
  let ssr = 0;
  for (let i = 0; i < n; i++) ssr += (y[i]! - my - slope * (x[i]! - mx)) ** 2;
  const se = Math.sqrt(ssr / (n - 2) / sxx);
  // Noise far below the numbers' own precision counts as none: a straight line falls with certainty.
  if (se <= 1e-12 * Math.max(1, Math.abs(slope))) return { slope, t: slope === 0 ? 0 : slope > 0 ? Infinity : -Infinity };
  return { slope, t: slope / se };
}

function chosenFalling(runId: string, s: StageSteps): MetricWarning | null {
  const c = s.series["rewards/chosen"];
  if (!c || c.y.length < 3) return null;
  const from = trailingRun(c, (y) => y < 0);
  if (from === null) return null;
  const steps = spanSteps(c, from);
  if (steps < stepWindow(s)) return null;
  const { t } = trend(c.x.slice(from), c.y.slice(from));
  if (t > -TREND_T) return null;
  return warning("chosen-falling", "warning", runId, s.round, s.stage,
    `rewards/chosen has been negative and falling for ${steps} steps — the model is lowering the likelihood of correct answers too; consider a lower learning rate or adding an SFT term.`);
}

function accuracyStuck(runId: string, s: StageSteps): MetricWarning | null {
  const a = s.series["rewards/accuracies"];
  if (!a || a.y.length < 2) return null;
  const window = stepWindow(s);
  for (const level of [0, 1] as const) {
    const from = trailingRun(a, (y) => Math.abs(y - level) < 1e-9);
    if (from === null) continue;
    const steps = spanSteps(a, from);
    if (steps < window) continue;
    const text = level === 0
      ? `rewards/accuracies has stayed at 0 for ${steps} steps — the model never scores a chosen rationale above its rejected one; check that the pairs are not reversed or identical, or raise the learning rate.`
      : `rewards/accuracies has been 1 for the last ${steps} steps — every pair is already separated and DPO is only widening margins (overfitting); fewer DPO steps or more varied pairs would help.`;
    return warning("reward-accuracy-stuck", "warning", runId, s.round, s.stage, text, String(level));
  }
  return null;
}

function lossZero(runId: string, s: StageSteps): MetricWarning | null {
  const l = s.series["loss"];
  if (!l || l.y.length === 0) return null;
  const last = l.y.slice(-Math.min(5, l.y.length));
  if (!last.every((v) => Math.abs(v) < ZERO_LOSS)) return null;
  const value = l.y[l.y.length - 1]!;
  const step = l.x[l.x.length - 1]!;
  const why = s.stage === "dpo"
    ? "the pairs are separated so far that DPO has nothing left to learn from them and overfits; fewer steps or a lower learning rate would help."
    : "the model has memorised its training data, or its batches hold no target tokens; check the data and consider fewer steps.";
  return warning("loss-zero", "warning", runId, s.round, s.stage, `the loss is ≈0 (${value.toPrecision(2)} at step ${step}) — ${why}`);
}

function nonFinite(runId: string, s: StageSteps): MetricWarning | null {
  const bad = (Object.entries(s.nonFinite) as Array<[StepMetric, { count: number; firstStep: number }]>).filter(([, v]) => v.count > 0);
  if (bad.length === 0) return null;
  const names = bad.map(([k]) => k);
  const count = Math.max(...bad.map(([, v]) => v.count));
  const first = Math.min(...bad.map(([, v]) => v.firstStep));
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  return warning("non-finite", "error", runId, s.round, s.stage,
    `${list} ${names.length === 1 ? "was" : "were"} not a finite number (NaN or infinite) at ${count} step${count === 1 ? "" : "s"}, first at step ${first} — training has diverged; lower the learning rate and run the round again.`);
}

/** Warnings about one stage's curves. */
export function stageWarnings(runId: string, s: StageSteps): MetricWarning[] {
  const out = [nonFinite(runId, s), lossZero(runId, s)];
  if (s.stage === "dpo") out.push(chosenFalling(runId, s), accuracyStuck(runId, s));
  return out.filter((w): w is MetricWarning => w !== null);
}

const percent = (v: number): string => `${(100 * v).toFixed(1)}%`;

/** Warnings that depend on the rounds table; recomputed when a row changes. */
export const ROUND_WARNING_KINDS: readonly WarningKind[] = ["no-right-samples", "no-pairs", "accuracy-drop"];

/**
 * Warnings about the rounds table: no sample right and no pseudo-label (the model cannot start), a DPO round
 * without pairs, test accuracy or pass@k falling by more than noise.
 */
export function roundWarnings(runId: string, mode: RunMode, rows: readonly RoundRow[]): MetricWarning[] {
  const out: MetricWarning[] = [];
  for (const r of rows) {
    // Nothing right of its own to learn from: every later number follows from this, so it is said first (sortWarnings).
    if (r.round >= 1 && r.samples !== null && r.samples > 0 && r.correctSamples === 0 && !(r.pseudoLabels !== null && r.pseudoLabels > 0)) {
      const labels = r.pseudoLabels === 0 ? " and there are 0 pseudo-labels" : "";
      out.push(warning("no-right-samples", "error", runId, r.round, null,
        `0 of ${r.samples} samples were right${labels} — the model cannot start: none of its rationales reaches the gold answer, so self-training has nothing of its own to learn from. Lower sampling.temperature, check the prompt format (model.promptFormat) against the one the model learnt, or warm up longer (warmup.steps or warmup.epochs).`));
    }
    if (mode === "dpo-st" && r.round >= 1 && r.pairs === 0) {
      out.push(warning("no-pairs", "warning", runId, r.round, "dpo",
        "no preference pairs were built, so the DPO step kept the SFT model — every question's samples were all right or all wrong; sample more rationales per question or review the answers."));
    }
  }
  // Greedy accuracy and pass@k alike: either falling by more than evaluation noise needs a look.
  for (const [key, name] of [["testAccuracy", "test accuracy"], ["testPassAtK", "test pass@k"]] as const) {
    const evaluated = rows.filter((r) => r[key] !== null).sort((a, b) => a.round - b.round);
    for (let i = 1; i < evaluated.length; i++) {
      const a = evaluated[i - 1]!;
      const b = evaluated[i]!;
      const pa = a[key]!;
      const pb = b[key]!;
      const n = b.testQuestions ?? a.testQuestions;
      const noise = n ? Math.max(0.01, Z_95 * Math.sqrt((pa * (1 - pa)) / n + (pb * (1 - pb)) / n)) : 0.05;
      if (pa - pb <= noise) continue;
      const size = n ? ` on ${n} questions` : "";
      const label = key === "testPassAtK" && b.k !== null ? `test pass@${b.k}` : name;
      out.push(warning("accuracy-drop", "warning", runId, b.round, null,
        `${label} fell from ${percent(pa)} in round ${a.round} to ${percent(pb)}, more than evaluation noise${size} explains — look at this round's pseudo-labels and pairs before starting the next one.`, key === "testAccuracy" ? "" : key));
    }
  }
  return out;
}

/** A model that gets nothing right first, then errors, then the newest round first: what needs attention now leads. */
export function sortWarnings(list: MetricWarning[]): MetricWarning[] {
  const rank = (w: MetricWarning): number => (w.kind === "no-right-samples" ? 0 : w.severity === "error" ? 1 : 2);
  return list.sort((a, b) => rank(a) - rank(b) || (b.round ?? -1) - (a.round ?? -1) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
