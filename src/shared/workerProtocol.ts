/**
 * The typed protocol between a driver (the extension host or the CLI) and the worker process.
 * Commands go to the engine; events come back. Both sides validate at the boundary with the guards below.
 */
import type { RoundResult } from "./roundResult";
import type { DatasetReport } from "./datasetTypes";
import { STAGE_NAMES, type RunManifest, type RunMode, type StageName, type StageState } from "./runTypes";
import { isRecord as isObject, shown } from "./messageGuards";
import type { MetricRecord } from "./metricRecord";

export type WorkerCommand =
  | { type: "checkDataset"; id: string; file: string }
  /** Runs (or resumes) a run through a round; round 0 is the warm-up; default: the next round (after the warm-up). */
  | { type: "runRound"; id: string; workspace: string; runId?: string; round?: number; newRun?: boolean; mode?: RunMode; restartFrom?: StageName }
  /** Runs a round's evaluation again (default: the newest round with a model). */
  | { type: "evaluate"; id: string; workspace: string; runId?: string; round?: number }
  | { type: "status"; id: string; workspace: string }
  | { type: "cancel"; id: string }
  | { type: "shutdown" };

export type WorkerEvent =
  | { type: "ready"; pid: number }
  | { type: "log"; id: string | null; level: "info" | "warn" | "error"; message: string }
  | { type: "progress"; id: string; stage: string; done: number; total: number | null; round?: number; etaMs?: number | null; /** What is counted when not the stage's own unit (steps, questions), e.g. "reference pairs". */ unit?: string }
  | { type: "stage"; id: string; round: number; stage: StageName; state: StageState; counts?: Record<string, number>; error?: string }
  | { type: "metric"; id: string; record: MetricRecord }
  | { type: "datasetReport"; id: string; report: DatasetReport }
  /** `peakRssBytes`: the engine process's peak resident memory so far (its maxRSS), for the user and the notes. */
  | { type: "roundFinished"; id: string; runId: string; round: number; peakRssBytes?: number; /** The round's greedy accuracy and the round before's (roundResult). */ result?: RoundResult }
  | { type: "runStatus"; id: string; runs: RunManifest[] }
  | { type: "cancelled"; id: string }
  | { type: "failed"; id: string; message: string }
  | { type: "finished"; id: string };


/** Longest id, path and run id a command may carry: a bad value is refused, never echoed back at length. */
export const MAX_ID = 200;
const MAX_PATH = 4096;
/** Rounds are counted one by one; anything beyond this is a mistake, not a plan. */
export const MAX_ROUND = 10_000;


/** Why a message is not a valid command, or null when it is one. */
export function commandProblem(msg: unknown): string | null {
  if (!isObject(msg)) return "not an object";
  const type = msg["type"];
  const text = (k: string, max: number, required: boolean): string | null => {
    const v = msg[k];
    if (v === undefined && !required) return null;
    if (typeof v !== "string" || v.length === 0) return `${String(type)}: ${k} must be a non-empty string`;
    return v.length > max ? `${String(type)}: ${k} must be at most ${max} characters, got ${v.length}` : null;
  };
  const round = (): string | null => {
    const v = msg["round"];
    if (v === undefined) return null;
    return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_ROUND ? null : `${String(type)}: round must be a whole number from 0 to ${MAX_ROUND}, got ${shown(v)}`;
  };
  const flag = (k: string): string | null => (msg[k] === undefined || typeof msg[k] === "boolean" ? null : `${String(type)}: ${k} must be a boolean`);
  const id = (): string | null => text("id", MAX_ID, true);
  switch (type) {
    case "checkDataset":
      return id() ?? text("file", MAX_PATH, true);
    case "runRound": {
      const p = id() ?? text("workspace", MAX_PATH, true) ?? text("runId", MAX_ID, false) ?? round() ?? flag("newRun");
      if (p) return p;
      if (msg["mode"] !== undefined && msg["mode"] !== "dpo-st" && msg["mode"] !== "st") return 'runRound: mode must be "dpo-st" or "st"';
      if (msg["restartFrom"] !== undefined && !(STAGE_NAMES as readonly string[]).includes(msg["restartFrom"] as string)) return `runRound: restartFrom must be one of ${STAGE_NAMES.join(", ")}`;
      return null;
    }
    case "evaluate":
      return id() ?? text("workspace", MAX_PATH, true) ?? text("runId", MAX_ID, false) ?? round();
    case "status":
      return id() ?? text("workspace", MAX_PATH, true);
    case "cancel":
      return id();
    case "shutdown":
      return null;
    default:
      return `unknown command type ${shown(type)}`;
  }
}

export function isWorkerCommand(msg: unknown): msg is WorkerCommand {
  return commandProblem(msg) === null;
}

const EVENT_TYPES = new Set(["ready", "log", "progress", "stage", "metric", "datasetReport", "roundFinished", "runStatus", "cancelled", "failed", "finished"]);

/** A light check of incoming events: the engine is our own code, so the type tag is what is verified. */
export function isWorkerEvent(msg: unknown): msg is WorkerEvent {
  return isObject(msg) && typeof msg["type"] === "string" && EVENT_TYPES.has(msg["type"]);
}
