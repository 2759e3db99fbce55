/**
 * What a running job says to a person, from the engine's events alone: one source of truth for the progress
 * notification and the status bar, so they never lag the stage (issue 28, "progress never goes quiet or stale").
 * Pure: the extension host feeds it events and shows `message` and `status`; the tests feed it the same.
 */
import type { WorkerEvent } from "./workerProtocol";
import { stageLabel } from "./runTypes";
import { formatDuration } from "./format";

/** Stages that load a model into an engine before their first step (the quiet seconds at their start). */
const LOADS_A_MODEL: ReadonlySet<string> = new Set(["warmup", "sample-dpo", "dpo", "sample-sft", "sft", "eval"]);

export class JobProgress {
  /** The notification's line. */
  message: string;
  /** The status bar's short text. */
  status: string;
  private stage: { round: number; stage: string } | null = null;

  constructor(private readonly title: string) {
    this.message = "starting the engine process…";
    this.status = title;
  }

  /** Takes one event; true when message or status changed. */
  event(e: WorkerEvent): boolean {
    const before = `${this.message}\n${this.status}`;
    switch (e.type) {
      case "stage": {
        const where = `Round ${e.round} · ${stageLabel(e.stage)}`;
        if (e.state === "running") {
          this.stage = { round: e.round, stage: e.stage };
          this.message = LOADS_A_MODEL.has(e.stage) ? `${where}: loading the model and building the engine…` : `${where}…`;
          this.status = `Round ${e.round} · ${stageLabel(e.stage, true)}`;
        } else if (e.state === "done") {
          this.message = `${where}: done`;
        } else {
          this.message = `${where}: ${e.state}${e.error ? ` (${e.error})` : ""}`;
        }
        break;
      }
      case "progress": {
        if (!e.total) break;
        const round = e.round ?? this.stage?.round;
        const pct = Math.floor((100 * e.done) / e.total);
        const eta = e.etaMs ? ` · ETA ${formatDuration(e.etaMs)}` : "";
        this.message = `Round ${round ?? "?"} · ${stageLabel(e.stage)} ${e.done.toLocaleString("en-US")}/${e.total.toLocaleString("en-US")}${e.unit ? ` ${e.unit}` : ""}${eta}`;
        this.status = `Round ${round ?? "?"} · ${stageLabel(e.stage, true)} ${pct}%`;
        break;
      }
      case "log":
        // What the engine says between steps: which engine it runs on, where a stage resumes, how many pairs it
        // draws. Warnings are the host's to show as warnings; info lines are what is happening now.
        if (e.level === "info") {
          // "round 1 dpo: 3 steps × 8 pairs draw…" is said once, under the stage's own name.
          const text = e.message.replace(/^round \d+ [\w-]+: /, "");
          this.message = this.stage ? `Round ${this.stage.round} · ${stageLabel(this.stage.stage)}: ${text}` : text;
        }
        break;
      default:
        break;
    }
    return `${this.message}\n${this.status}` !== before;
  }
}
