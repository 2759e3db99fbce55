/**
 * The metrics dashboard's protocol: what the host posts to the webview (the model it reads from the run store,
 * live step records, the job's status) and what the webview may ask of the host. Both sides import these
 * types; the host checks every incoming message with `checkDashboardMessage` before acting on it.
 */
import { checkMessage, MessageError, type Checked, type Fields } from "./messageGuards";
import type { RunMode } from "./runTypes";
import type { RoundSummary, StepMetric, TrainStage } from "./metricRecord";


/** One curve, as parallel arrays (half the JSON of {x, y} objects). Only finite values are kept. */
export interface Series {
  x: number[];
  y: number[];
}

/** The steps of one training stage of one round. */
export interface StageSteps {
  round: number;
  stage: TrainStage;
  totalSteps: number | null;
  /** Steps recorded, before any downsampling. */
  recorded: number;
  /** The highest step seen: a live record at or below it is one the model has already. */
  lastStep: number;
  series: Partial<Record<StepMetric, Series>>;
  /** Metrics that were not finite numbers (NaN, ±Infinity, or null as JSON writes NaN), kept out of the series. */
  nonFinite: Partial<Record<StepMetric, { count: number; firstStep: number }>>;
}

/** A row of the rounds table: the round's summary (null where the round has not produced a number yet) and more. */
export interface RoundRow extends RoundSummary {
  round: number;
  testQuestions: number | null;
  /** Samples whose final answer the answer check found right, from the sampling stages' counts (null: not sampled yet). */
  correctSamples: number | null;
  /** The round's summary record exists (its evaluation finished). */
  evaluated: boolean;
}

export type WarningKind = "no-right-samples" | "chosen-falling" | "reward-accuracy-stuck" | "loss-zero" | "no-pairs" | "non-finite" | "accuracy-drop" | "unreadable";

export interface MetricWarning {
  /** Stable across re-reads, so the webview can keep a list without flicker. */
  id: string;
  kind: WarningKind;
  severity: "warning" | "error";
  runId: string;
  round: number | null;
  stage: TrainStage | null;
  /** One plain sentence that says where, what, and what to try. */
  text: string;
}

/** What every run shows without its step curves. */
export interface RunSummary {
  runId: string;
  mode: RunMode;
  createdAt: string;
  engine: string | null;
  device: string | null;
  /** Why engine.name "auto" fell back to this engine (the faster could not start); null when it did not. */
  engineFallback: string | null;
  rounds: RoundRow[];
  warnings: MetricWarning[];
}

export interface RunMetrics extends RunSummary {
  steps: StageSteps[];
}

export interface RunStatus {
  running: boolean;
  runId: string | null;
  round: number | null;
  stage: string | null;
  step: number | null;
  totalSteps: number | null;
}

export interface DashboardState {
  /** Every run, oldest first, without step curves (they are large). */
  runs: RunSummary[];
  /** The run shown, with its step curves; null when there are no runs. */
  selected: RunMetrics | null;
  status: RunStatus;
  /** Runs that could not be read at all, one sentence each. */
  problems: string[];
}

/** One step as it arrives live: finite values only (the host counts the others into the warnings). */
export interface StepPoint {
  step: number;
  values: Partial<Record<StepMetric, number>>;
}

export type DashboardFromHost =
  | { type: "state"; state: DashboardState }
  /** Live steps of one stage; `reset` says the stage started again (a resumed run), so earlier points go. */
  | { type: "steps"; runId: string; round: number; stage: TrainStage; totalSteps: number | null; reset: boolean; points: StepPoint[]; warnings: MetricWarning[] }
  | { type: "status"; status: RunStatus };

export type DashboardToHost =
  | { type: "ready" }
  | { type: "log"; level: "info" | "warn" | "error"; text: string }
  | { type: "selectRun"; runId: string }
  | { type: "revealRound"; runId: string; round: number }
  | { type: "savePng"; runId: string; chart: string; dataUrl: string }
  | { type: "refresh" }
  | { type: "startRound" };

export const PNG_DATA_URL_PREFIX = "data:image/png;base64,";
/** A chart of a few hundred pixels is well under a megabyte; anything near this is not one of ours. */
export const MAX_PNG_DATA_URL = 16 * 1024 * 1024;
const MAX_LOG_TEXT = 4000;
const MAX_RUN_ID = 100;
const CHART_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function chartName(f: Fields): string {
  const v = f.str("chart", { max: 40 });
  if (!CHART_NAME.test(v)) throw new MessageError(`dashboard "savePng": "chart" must be lower-case letters, digits and "-", got ${JSON.stringify(v)}`);
  return v;
}

function pngDataUrl(f: Fields): string {
  const v = f.str("dataUrl", { max: MAX_PNG_DATA_URL });
  const body = v.slice(PNG_DATA_URL_PREFIX.length);
  if (!v.startsWith(PNG_DATA_URL_PREFIX) || body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) {
    throw new MessageError(`dashboard "savePng": "dataUrl" must be a base64 PNG data URL (${PNG_DATA_URL_PREFIX}…), got ${JSON.stringify(v.slice(0, 40))}`);
  }
  return v;
}

/** The host's check of a message from the dashboard webview; a refusal names the field. */
export function checkDashboardMessage(raw: unknown): Checked<DashboardToHost> {
  return checkMessage<DashboardToHost>(raw, "dashboard", {
    ready: () => ({ type: "ready" }),
    log: (f) => ({ type: "log", level: f.oneOf("level", ["info", "warn", "error"] as const), text: f.str("text", { empty: true, max: MAX_LOG_TEXT }) }),
    selectRun: (f) => ({ type: "selectRun", runId: f.str("runId", { max: MAX_RUN_ID }) }),
    revealRound: (f) => ({ type: "revealRound", runId: f.str("runId", { max: MAX_RUN_ID }), round: f.int("round", 0, 100_000) }),
    savePng: (f) => ({ type: "savePng", runId: f.str("runId", { max: MAX_RUN_ID }), chart: chartName(f), dataUrl: pngDataUrl(f) }),
    refresh: () => ({ type: "refresh" }),
    startRound: () => ({ type: "startRound" }),
  });
}

const FROM_HOST_TYPES: ReadonlySet<string> = new Set<DashboardFromHost["type"]>(["state", "steps", "status"]);

/** The webview's light check: the host is our own code, so the tag is what is verified (foreign frames may post too). */
export function isDashboardFromHost(raw: unknown): raw is DashboardFromHost {
  return typeof raw === "object" && raw !== null && FROM_HOST_TYPES.has((raw as { type?: unknown }).type as string);
}
