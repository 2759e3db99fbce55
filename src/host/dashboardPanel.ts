import * as vscode from "vscode";
import { WebviewApp } from "./webviewApp";
import type { LiveMetric, RunController } from "./runController";
import { checkDashboardMessage, PNG_DATA_URL_PREFIX } from "../shared/dashboardProtocol";
import type { DashboardFromHost, DashboardToHost, RunStatus } from "../shared/dashboardProtocol";
import { dashboardState, readDashboard, MAX_POINTS, type DashboardModel, type RunCache } from "../core/metrics/dashboardData";
import { LiveSteps, findRunningStage, mergeLiveRecords } from "../core/metrics/liveMetrics";
import type { MetricRecord } from "../shared/metricRecord";

const IDLE: RunStatus = { running: false, runId: null, round: null, stage: null, step: null, totalSteps: null };
/** Live steps are posted in batches: a tiny model trains many steps a second, and a chart need not redraw each. */
const LIVE_BATCH_MS = 250;
/** A finished stage writes the manifest and metrics.jsonl within moments; one re-read covers both. */
const RELOAD_DELAY_MS = 300;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The metrics dashboard: one panel per window. The host owns the model (read from the run store, plus the
 * live records of the stage that is running); the webview caches what it is sent. The files are read again
 * when a stage finishes (from this window, or a `selftrain` CLI run in a terminal: both write the same files).
 */
export class DashboardPanel implements vscode.Disposable {
  static readonly viewType = "selfTraining.dashboard";
  private static current: DashboardPanel | undefined;

  /** Opens the dashboard for a workspace folder, or reveals it when it is open. */
  static show(extensionUri: vscode.Uri, workspaceUri: vscode.Uri, log: vscode.LogOutputChannel, runs: RunController): DashboardPanel {
    const open = DashboardPanel.current;
    if (open) {
      if (open.workspace.toString() !== workspaceUri.toString()) open.switchWorkspace(workspaceUri);
      open.app.reveal();
      return open;
    }
    DashboardPanel.current = new DashboardPanel(extensionUri, workspaceUri, log, runs);
    return DashboardPanel.current;
  }

  /** For deactivate: closes the panel if it is open. */
  static disposeCurrent(): void {
    DashboardPanel.current?.dispose();
  }

  private readonly app: WebviewApp<DashboardToHost, DashboardFromHost>;
  private readonly disposables: vscode.Disposable[] = [];
  private model: DashboardModel | null = null;
  /** Runs whose files have not changed are not parsed again on the next re-read. */
  private readonly cache: RunCache = new Map();
  /** The run the user picked; null follows the newest run. */
  private pinnedRunId: string | null = null;
  private status: RunStatus = IDLE;
  /** Step records of stages still running: not in metrics.jsonl yet, so merged again after each re-read. */
  private readonly live = new LiveSteps();
  private pending: LiveMetric[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private reloads = 0;
  private work: Promise<void> = Promise.resolve();
  private watcher: vscode.FileSystemWatcher | undefined;
  private disposed = false;

  private constructor(
    extensionUri: vscode.Uri,
    private workspace: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly runs: RunController,
  ) {
    this.app = new WebviewApp<DashboardToHost, DashboardFromHost>(extensionUri, { viewType: DashboardPanel.viewType, title: "Self-Training Metrics", app: "dashboard", check: checkDashboardMessage }, log);
    this.disposables.push(
      this.app,
      this.app.onDidDispose(() => this.dispose()),
      this.app.onReady(() => this.enqueue(() => this.reload())),
      this.app.onMessage((m) => this.enqueue(() => this.receive(m))),
      runs.onDidChangeRun(() => this.onRunChanged()),
      runs.onMetric((m) => this.onMetric(m)),
    );
    this.watch();
  }

  /** One thing at a time: a re-read and a live batch must not interleave their updates of the model. */
  private enqueue(task: () => Promise<void> | void): void {
    // A task queued before the panel closed finds it closed: nothing to update, nobody to post to.
    this.work = this.work.then(() => (this.disposed ? undefined : task())).catch((e: unknown) => this.log.error(`dashboard: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));
  }

  private watch(): void {
    this.watcher?.dispose();
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(this.workspace, ".selftrain/runs/**/{manifest.json,metrics.jsonl}"));
    const changed = (): void => this.scheduleReload();
    this.watcher.onDidCreate(changed);
    this.watcher.onDidChange(changed);
    this.watcher.onDidDelete(changed);
  }

  private switchWorkspace(uri: vscode.Uri): void {
    this.workspace = uri;
    this.pinnedRunId = null;
    this.live.clear();
    this.cache.clear();
    this.watch();
    this.enqueue(() => this.reload());
  }

  private onRunChanged(): void {
    if (!this.runs.running) {
      this.status = IDLE;
      this.app.post({ type: "status", status: this.status });
    }
    this.scheduleReload();
  }

  private scheduleReload(): void {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.enqueue(() => this.reload()), RELOAD_DELAY_MS);
  }

  private onMetric(m: LiveMetric): void {
    this.pending.push(m);
    this.batchTimer ??= setTimeout(() => {
      this.batchTimer = undefined;
      this.enqueue(() => this.flushLive());
    }, LIVE_BATCH_MS);
  }

  private shownRunId(): string | null {
    const runs = this.model?.runs ?? [];
    return runs.find((r) => r.runId === this.pinnedRunId)?.runId ?? runs[runs.length - 1]?.runId ?? null;
  }

  private postState(): void {
    if (!this.model || this.disposed) return;
    this.app.post({ type: "state", state: dashboardState(this.model, this.shownRunId(), { ...this.status, running: this.runs.running }) });
  }

  private async reload(): Promise<void> {
    const n = ++this.reloads;
    const model = await readDashboard(this.workspace.fsPath, MAX_POINTS, this.cache);
    if (this.disposed || n !== this.reloads) return;
    // With no job running the files are the whole truth: a cancelled stage's live steps are not kept.
    if (!this.runs.running) this.live.clear();
    else await this.statusFromManifest();
    this.live.mergeInto(model);
    this.model = model;
    this.postState();
  }

  /** Between stages, and in stages that log no steps (sampling, evaluation), the manifest says what is running. */
  private async statusFromManifest(): Promise<void> {
    const at = await findRunningStage(this.workspace.fsPath);
    if (!at) return;
    const s = this.status;
    if (s.runId === at.runId && s.round === at.round && s.stage === at.stage) return;
    this.status = { running: true, runId: at.runId, round: at.round, stage: at.stage, step: null, totalSteps: null };
  }

  private async flushLive(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    // Every record names its run.
    const byRun = new Map<string, MetricRecord[]>();
    for (const { record } of batch) {
      const list = byRun.get(record.runId) ?? [];
      list.push(record);
      byRun.set(record.runId, list);
    }
    let reread = false;
    let restate = false;
    for (const [runId, records] of byRun) {
      this.live.hold(records);
      const run = this.model?.runs.find((r) => r.runId === runId);
      if (!run) {
        reread = true; // a run this job has just created: read it (the live records are merged in on the way)
        continue;
      }
      const merged = mergeLiveRecords(run, records);
      for (const reason of merged.rejected) this.log.warn(`dashboard: left out a live metric record: ${reason}`);
      restate ||= merged.roundsChanged;
      const last = merged.appended[merged.appended.length - 1];
      if (last) {
        const step = last.points[last.points.length - 1]?.step ?? null;
        this.status = { running: true, runId, round: last.round, stage: last.stage, step, totalSteps: last.totalSteps };
        this.app.post({ type: "status", status: this.status });
      }
      if (runId !== this.shownRunId()) continue;
      for (const a of merged.appended) {
        this.app.post({ type: "steps", runId, round: a.round, stage: a.stage, totalSteps: a.totalSteps, reset: a.reset, points: a.points, warnings: run.warnings });
      }
    }
    if (reread) await this.reload();
    else if (restate) this.postState();
  }

  private async receive(m: DashboardToHost): Promise<void> {
    switch (m.type) {
      case "ready":
        return;
      case "log":
        this.log[m.level](`dashboard webview: ${m.text}`);
        return;
      case "refresh":
        return this.reload();
      case "selectRun":
        if (!this.model?.runs.some((r) => r.runId === m.runId)) {
          this.log.warn(`dashboard: the webview asked for run "${m.runId}", which is not in this workspace`);
          return;
        }
        this.pinnedRunId = m.runId;
        this.postState();
        return;
      case "revealRound":
        try {
          await vscode.commands.executeCommand("selfTraining.revealRound", { runId: m.runId, round: m.round });
        } catch (e) {
          this.log.error(`dashboard: could not reveal run ${m.runId} round ${m.round}: ${e instanceof Error ? e.message : String(e)}`);
        }
        return;
      case "savePng":
        return this.savePng(m.runId, m.chart, m.dataUrl);
      case "startRound":
        await vscode.commands.executeCommand("selfTraining.startRound");
        return;
    }
  }

  private async savePng(runId: string, chart: string, dataUrl: string): Promise<void> {
    const bytes = Buffer.from(dataUrl.slice(PNG_DATA_URL_PREFIX.length), "base64");
    if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
      this.log.warn(`dashboard: "${chart}" was sent as a PNG data URL but is not a PNG image; nothing saved`);
      return;
    }
    // The name suggested in the dialog: only a run id this workspace has (a message cannot steer the path).
    const known = this.model?.runs.some((r) => r.runId === runId) ?? false;
    const name = `${known ? `${runId}-` : ""}${chart}.png`;
    const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(this.workspace, name), filters: { "PNG image": ["png"] }, title: "Save Chart as PNG" });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, bytes);
    this.log.info(`dashboard: saved ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Saved the chart to ${vscode.workspace.asRelativePath(target)}.`, "Open").then((a) => a && vscode.commands.executeCommand("vscode.open", target));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    clearTimeout(this.batchTimer);
    clearTimeout(this.reloadTimer);
    this.watcher?.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
