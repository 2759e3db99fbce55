/**
 * The typed protocol between a driver (the extension host or the CLI) and the engine process.
 * Commands go to the engine; events come back. Both sides validate at the boundary with the guards below.
 */
import type { DatasetReport } from "./datasetTypes";
import type { RunManifest, RunMode, StageName, StageState } from "./runTypes";

export type EngineCommand =
  | { type: "checkDataset"; id: string; file: string }
  /** Runs (or resumes) a run through a round; round 0 is the warm-up; default: the next round (after the warm-up). */
  | { type: "runRound"; id: string; workspace: string; runId?: string; round?: number; newRun?: boolean; mode?: RunMode; restartFrom?: StageName }
  /** Runs a round's evaluation again (default: the newest round with a model). */
  | { type: "evaluate"; id: string; workspace: string; runId?: string; round?: number }
  | { type: "status"; id: string; workspace: string }
  | { type: "cancel"; id: string }
  | { type: "shutdown" };

export type EngineEvent =
  | { type: "ready"; pid: number }
  | { type: "log"; id: string | null; level: "info" | "warn" | "error"; message: string }
  | { type: "progress"; id: string; stage: string; done: number; total: number | null; round?: number; etaMs?: number | null }
  | { type: "stage"; id: string; round: number; stage: StageName; state: StageState; counts?: Record<string, number>; error?: string }
  | { type: "metric"; id: string; record: Record<string, string | number | null | undefined> }
  | { type: "datasetReport"; id: string; report: DatasetReport }
  | { type: "roundFinished"; id: string; runId: string; round: number }
  | { type: "runStatus"; id: string; runs: RunManifest[] }
  | { type: "cancelled"; id: string }
  | { type: "failed"; id: string; message: string }
  | { type: "finished"; id: string };

const STAGES: readonly StageName[] = ["warmup", "sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optional(msg: Record<string, unknown>, key: string, type: "string" | "number" | "boolean"): string | null {
  return msg[key] === undefined || typeof msg[key] === type ? null : `${String(msg["type"])}: ${key} must be a ${type}`;
}

/** Why a message is not a valid command, or null when it is one. */
export function commandProblem(msg: unknown): string | null {
  if (!isObject(msg)) return "not an object";
  const needId = (): string | null => (typeof msg["id"] === "string" && msg["id"].length > 0 ? null : `${String(msg["type"])}: id must be a non-empty string`);
  const needString = (k: string): string | null => (typeof msg[k] === "string" && (msg[k] as string).length > 0 ? null : `${String(msg["type"])}: ${k} must be a non-empty string`);
  switch (msg["type"]) {
    case "checkDataset":
      return needId() ?? needString("file");
    case "runRound": {
      const p = needId() ?? needString("workspace") ?? optional(msg, "runId", "string") ?? optional(msg, "round", "number") ?? optional(msg, "newRun", "boolean");
      if (p) return p;
      if (msg["round"] !== undefined && (!Number.isInteger(msg["round"]) || (msg["round"] as number) < 0)) return "runRound: round must be a whole number ≥ 0";
      if (msg["mode"] !== undefined && msg["mode"] !== "dpo-st" && msg["mode"] !== "st") return 'runRound: mode must be "dpo-st" or "st"';
      if (msg["restartFrom"] !== undefined && !STAGES.includes(msg["restartFrom"] as StageName)) return `runRound: restartFrom must be one of ${STAGES.join(", ")}`;
      return null;
    }
    case "evaluate":
      return needId() ?? needString("workspace") ?? optional(msg, "runId", "string") ?? optional(msg, "round", "number");
    case "status":
      return needId() ?? needString("workspace");
    case "cancel":
      return needId();
    case "shutdown":
      return null;
    default:
      return `unknown command type ${JSON.stringify(msg["type"])}`;
  }
}

export function isEngineCommand(msg: unknown): msg is EngineCommand {
  return commandProblem(msg) === null;
}

const EVENT_TYPES = new Set(["ready", "log", "progress", "stage", "metric", "datasetReport", "roundFinished", "runStatus", "cancelled", "failed", "finished"]);

/** A light check of incoming events: the engine is our own code, so the type tag is what is verified. */
export function isEngineEvent(msg: unknown): msg is EngineEvent {
  return isObject(msg) && typeof msg["type"] === "string" && EVENT_TYPES.has(msg["type"]);
}
