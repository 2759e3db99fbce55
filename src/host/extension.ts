import * as vscode from "vscode";
import { WorkerService } from "./workerService";
import { RunController } from "./runController";
import { DatasetTreeProvider } from "./datasetTree";
import { DashboardPanel } from "./dashboardPanel";
import { RecordLens } from "./recordLens";
import { Host } from "./host";
import { registerRunCommands } from "./commands/runCommands";
import { registerSetupCommands } from "./commands/setupCommands";
import { registerReviewCommands } from "./commands/reviewCommands";

/** Builds the services and registers them; every long-lived object is disposed with the extension. */
export function activate(context: vscode.ExtensionContext): void {
  const started = performance.now();
  const output = vscode.window.createOutputChannel("Self-Training", { log: true });
  const worker = new WorkerService(vscode.Uri.joinPath(context.extensionUri, "dist", "worker.js").fsPath, output);
  const runs = new RunController(worker, output);
  const workspace = (): vscode.Uri | undefined => vscode.workspace.workspaceFolders?.[0]?.uri;
  const tree = new DatasetTreeProvider(workspace, () => runs.running);
  const view = vscode.window.createTreeView("selfTraining.explorer", { treeDataProvider: tree, showCollapseAll: true });
  const lens = new RecordLens(context.extensionUri, workspace);
  context.subscriptions.push(output, worker, runs, tree, view, lens, runs.onDidChangeRun(() => tree.refresh()), { dispose: () => DashboardPanel.disposeCurrent() });
  const host = new Host(context, output, worker, runs, tree, view, lens);

  void host.setInitialized();
  const watcher = vscode.workspace.createFileSystemWatcher("**/.selftrain/{config.json,reviews.jsonl,runs/*/manifest.json}");
  const onFiles = (): void => {
    void host.setInitialized();
    tree.refresh();
    lens.refresh();
  };
  context.subscriptions.push(watcher, watcher.onDidCreate(onFiles), watcher.onDidChange(onFiles), watcher.onDidDelete(onFiles));

  registerRunCommands(host);
  registerSetupCommands(host);
  registerReviewCommands(host);
  output.info(`activated in ${(performance.now() - started).toFixed(1)} ms`);
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
