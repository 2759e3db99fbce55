import * as vscode from "vscode";
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { configPath, selftrainDir } from "../core/selftrain/workspace";
import { readConfigProblems } from "../core/selftrain/configProblems";
import { RunStore } from "../core/store/runStore";
import { ReviewLog } from "../core/store/reviewLog";
import { ReviewPanel, type ReviewDeps } from "./reviewPanel";
import type { WorkerService } from "./workerService";
import type { RunController } from "./runController";
import { configPlace, type DatasetTreeProvider, type ExplorerNode } from "./datasetTree";
import type { RecordLens } from "./recordLens";
import type { ReviewDecision } from "../shared/runTypes";

/**
 * The extension's long-lived services and the small helpers every command needs, built once in activate() and
 * handed to the command files (src/host/commands/), which register what they implement.
 */
export class Host {
  constructor(
    readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
    readonly worker: WorkerService,
    readonly runs: RunController,
    readonly tree: DatasetTreeProvider,
    readonly view: vscode.TreeView<ExplorerNode>,
    readonly lens: RecordLens,
  ) {}

  /** Lost review decisions already shown in this session, by the file that keeps their bytes. */
  private readonly lostShown = new Set<string>();

  workspace(): vscode.Uri | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  /** The workspace folder when it is set up for self-training; otherwise says what to do and returns undefined. */
  needWorkspace(): vscode.Uri | undefined {
    const ws = this.workspace();
    if (!ws) void vscode.window.showWarningMessage("Open a folder first: Self-Training works on a workspace folder.");
    else if (!existsSync(configPath(ws.fsPath))) {
      void vscode.window.showWarningMessage("No self-training set-up in this workspace.", "Initialize Workspace").then((a) => a && vscode.commands.executeCommand("selfTraining.initWorkspace"));
      return undefined;
    }
    return ws;
  }

  /**
   * The workspace folder when its config.json reads without a problem. Otherwise one error says the first problem
   * (the explorer lists them all) with "Open config.json", which opens the file at the setting, and this returns
   * undefined: nothing is started that would only fail on the same settings.
   */
  needConfig(): vscode.Uri | undefined {
    const ws = this.needWorkspace();
    if (!ws) return undefined;
    const [problem, ...more] = readConfigProblems(configPath(ws.fsPath)).problems;
    if (!problem) return ws;
    this.output.error(`${problem.file}:${problem.line + 1}:${problem.character + 1}: ${problem.message}`);
    const others = more.length ? ` (and ${more.length} more, listed in the Dataset Explorer)` : "";
    void vscode.window.showErrorMessage(`${basename(problem.file)}: ${problem.message}${others}`, "Open config.json").then((a) => a && vscode.commands.executeCommand("selfTraining.openConfig", configPlace(problem)));
    return undefined;
  }

  /** The `selfTraining.initialized` context key, which the views' welcome content and menus read. */
  setInitialized(): Thenable<unknown> {
    const ws = this.workspace();
    return vscode.commands.executeCommand("setContext", "selfTraining.initialized", Boolean(ws && existsSync(configPath(ws.fsPath))));
  }

  /** Registers a command whose errors reach the user (a toast with "Show Log") and the log. */
  command(id: string, fn: (...args: never[]) => unknown): void {
    this.context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await fn(...args);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        this.output.error(message);
        void vscode.window.showErrorMessage(message, "Show Log").then((a) => a && this.output.show());
      }
    }));
  }

  /** Records a decision from the explorer, a CodeLens or a command; every view then shows it. */
  decide(make: () => ReviewDecision | null): void {
    const ws = this.needWorkspace();
    const decision = ws ? make() : null;
    if (!ws || !decision) return;
    const log = new ReviewLog(selftrainDir(ws.fsPath));
    log.append(decision);
    // A decision an interrupted write cut off is not in force: the person is told which one to make again (once
    // a session per kept file; the round and `selftrain status` say it too, until the file is deleted).
    for (const lost of log.read().lost) {
      if (this.lostShown.has(lost.file)) continue;
      this.lostShown.add(lost.file);
      void vscode.window.showWarningMessage(lost.message, "Show Log").then((a) => a && this.output.show());
      this.output.warn(lost.message);
    }
    this.tree.refresh();
    this.lens.refresh();
    ReviewPanel.refreshIfOpen();
  }

  async newestRun(ws: vscode.Uri): Promise<RunStore | null> {
    const id = RunStore.newest(selftrainDir(ws.fsPath));
    return id === null ? null : RunStore.open(selftrainDir(ws.fsPath), id);
  }

  reviewDeps(ws: vscode.Uri): ReviewDeps {
    return {
      extensionUri: this.context.extensionUri, workspace: ws, log: this.output,
      roundIndex: (runId, round) => this.tree.roundIndex(runId, round),
      onDecided: () => {
        this.tree.refresh();
        this.lens.refresh();
      },
    };
  }
}
