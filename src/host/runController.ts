import * as vscode from "vscode";
import { randomUUID } from "node:crypto";
import { CancelledByUser, WorkerExited } from "../worker/client";
import type { WorkerService } from "./workerService";
import type { WorkerCommand, WorkerEvent } from "../shared/workerProtocol";
import type { MetricRecord } from "../shared/metricRecord";
import { JobProgress } from "../shared/jobProgress";
import { formatRoundResult } from "../shared/roundResult";

/** A metrics record the worker reported while a job runs; metrics.jsonl gets it only when its stage ends. */
export interface LiveMetric {
  jobId: string;
  record: MetricRecord;
}

type Job = { kind: "runRound"; newRun?: boolean; round?: number; runId?: string } | { kind: "evaluate" };

/**
 * Runs one job at a time in the engine: a progress notification with stage, step and ETA and a Cancel that
 * works, a status bar item while it runs, the engine's log in the output channel, errors with "Show Log".
 */
export class RunController implements vscode.Disposable {
  private active: { id: string; cancel: () => void } | null = null;
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a stage finishes, so views refresh live. */
  readonly onDidChangeRun = this.changed.event;
  private readonly metric = new vscode.EventEmitter<LiveMetric>();
  /** Every step and round record as it happens, so the dashboard draws a stage while it runs. */
  readonly onMetric = this.metric.event;

  constructor(
    private readonly worker: WorkerService,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.status.command = "selfTraining.openDashboard";
    this.status.name = "Self-Training";
  }

  get running(): boolean {
    return this.active !== null;
  }

  stop(): void {
    if (!this.active) {
      void vscode.window.showInformationMessage("No self-training job is running.");
      return;
    }
    this.active.cancel();
  }

  async run(workspace: vscode.Uri, job: Job): Promise<void> {
    if (this.active) {
      void vscode.window.showWarningMessage("A self-training job is already running. Stop it first, or wait for it to finish.");
      return;
    }
    const id = randomUUID();
    const command: WorkerCommand & { id: string } = job.kind === "evaluate"
      ? { type: "evaluate", id, workspace: workspace.fsPath }
      : { type: "runRound", id, workspace: workspace.fsPath, newRun: job.newRun, round: job.round, runId: job.runId };
    const title = job.kind === "evaluate" ? "Evaluating" : job.round === 0 ? "Warm-up SFT" : "Self-training round";
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      const client = await this.worker.get();
      this.active = { id, cancel: () => client.send({ type: "cancel", id }) };
      // ▶ greys out and ■ Stop shows in the explorer's title bar while the job runs.
      void vscode.commands.executeCommand("setContext", "selfTraining.running", true);
      token.onCancellationRequested(() => this.active?.cancel());
      // One source for the notification and the status bar: the stage, its count and ETA, or what it is doing
      // before its first step (loading the model, resuming), from the first second.
      const view = new JobProgress(title);
      this.status.text = `$(beaker) ${view.status}`;
      this.status.show();
      progress.report({ message: view.message });
      try {
        const events = await client.run(command, (e) => {
          const line = describe(e);
          if (line) this.output.info(line);
          if (view.event(e)) {
            progress.report({ message: view.message, increment: 0 });
            this.status.text = `$(beaker) ${view.status}`;
          }
          if (e.type === "metric") this.metric.fire({ jobId: e.id, record: e.record });
          // What the engine warns of (a cut-off file, fewer records than a stage wrote) is shown, not only logged.
          if (e.type === "log" && e.level === "warn") void vscode.window.showWarningMessage(e.message, "Show Log").then((a) => a && this.output.show());
          if (e.type === "stage" && e.state !== "running") this.changed.fire();
        });
        const done = events.find((e) => e.type === "roundFinished");
        if (done && done.type === "roundFinished") {
          const result = done.result ? `: ${formatRoundResult(done.result)}` : ".";
          void vscode.window.showInformationMessage(`Run ${done.runId}: round ${done.round} finished${result}`, "Open Dashboard").then((a) => a && vscode.commands.executeCommand("selfTraining.openDashboard"));
        }
      } catch (e) {
        if (e instanceof WorkerExited) {
          this.output.error(e.message); // the engine service has told the user already
        } else if (e instanceof CancelledByUser) {
          void vscode.window.showInformationMessage("Stopped. Finished stages are kept; start the round again to resume.");
        } else {
          const message = e instanceof Error ? e.message : String(e);
          this.output.error(message);
          void vscode.window.showErrorMessage(message, "Show Log").then((a) => a && this.output.show());
        }
      } finally {
        this.active = null;
        void vscode.commands.executeCommand("setContext", "selfTraining.running", false);
        this.status.hide();
        this.changed.fire();
      }
    });
  }

  dispose(): void {
    this.active?.cancel();
    this.status.dispose();
    this.changed.dispose();
    this.metric.dispose();
  }
}

function describe(e: WorkerEvent): string | null {
  switch (e.type) {
    case "stage":
      return `round ${e.round} ${e.stage}: ${e.state}${e.error ? ` (${e.error})` : ""}${e.counts && e.state === "done" ? " " + JSON.stringify(e.counts) : ""}`;
    case "metric":
      return e.record["kind"] === "round" ? `round summary ${JSON.stringify(e.record)}` : null;
    case "failed":
      return `failed: ${e.message}`;
    default:
      return null;
  }
}

