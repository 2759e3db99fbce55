/**
 * The typed protocol between a driver (the extension host or the CLI) and the engine process.
 * Commands go to the engine; events come back. Both sides validate at the boundary with the guards below.
 */
import type { DatasetReport } from "./datasetTypes";

export type EngineCommand =
  | { type: "checkDataset"; id: string; file: string }
  | { type: "cancel"; id: string }
  | { type: "shutdown" };

export type EngineEvent =
  | { type: "ready"; pid: number }
  | { type: "log"; id: string | null; level: "info" | "warn" | "error"; message: string }
  | { type: "progress"; id: string; stage: string; done: number; total: number | null }
  | { type: "datasetReport"; id: string; report: DatasetReport }
  | { type: "failed"; id: string; message: string }
  | { type: "finished"; id: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Why a message is not a valid command, or null when it is one. */
export function commandProblem(msg: unknown): string | null {
  if (!isObject(msg)) return "not an object";
  switch (msg["type"]) {
    case "checkDataset":
      if (typeof msg["id"] !== "string") return "checkDataset: id must be a string";
      if (typeof msg["file"] !== "string" || msg["file"].length === 0) return "checkDataset: file must be a non-empty string";
      return null;
    case "cancel":
      return typeof msg["id"] === "string" ? null : "cancel: id must be a string";
    case "shutdown":
      return null;
    default:
      return `unknown command type ${JSON.stringify(msg["type"])}`;
  }
}

export function isEngineCommand(msg: unknown): msg is EngineCommand {
  return commandProblem(msg) === null;
}

const EVENT_TYPES = new Set(["ready", "log", "progress", "datasetReport", "failed", "finished"]);

/** A light check of incoming events: the engine is our own code, so the type tag is what is verified. */
export function isEngineEvent(msg: unknown): msg is EngineEvent {
  return isObject(msg) && typeof msg["type"] === "string" && EVENT_TYPES.has(msg["type"]);
}
