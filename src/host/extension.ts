import * as vscode from "vscode";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { WorkerService } from "./workerService";
import { RunController } from "./runController";
import { DatasetTreeProvider, type ExplorerNode } from "./datasetTree";
import { settingsOverrides } from "./settings";
import { formatDatasetReport } from "../core/data/datasetReport";
import { initWorkspace, configPath, selftrainDir, exportRound, warmupPlan } from "../core/selftrain/workspace";
import { writeSyntheticSet, freeDataFolder } from "../core/data/syntheticFiles";
import { RunStore } from "../core/store/runStore";
import { ReviewLog } from "../core/store/reviewLog";
import { ReviewPanel, type ReviewDeps, type ReviewTarget } from "./reviewPanel";
import { DashboardPanel } from "./dashboardPanel";
import { RecordLens } from "./recordLens";
import type { ReviewDecision } from "../shared/runTypes";

/** Builds the services and registers them; every long-lived object is disposed with the extension. */
export function activate(context: vscode.ExtensionContext): void {
  const started = performance.now();
  const output = vscode.window.createOutputChannel("Self-Training", { log: true });
  const engine = new WorkerService(vscode.Uri.joinPath(context.extensionUri, "dist", "worker.js").fsPath, output);
  const runs = new RunController(engine, output);
  const workspace = (): vscode.Uri | undefined => vscode.workspace.workspaceFolders?.[0]?.uri;
  const tree = new DatasetTreeProvider(workspace, () => runs.running);
  const view = vscode.window.createTreeView("selfTraining.explorer", { treeDataProvider: tree, showCollapseAll: true });
  context.subscriptions.push(output, engine, runs, tree, view, runs.onDidChangeRun(() => tree.refresh()));

  const setInitialized = (): Thenable<unknown> => vscode.commands.executeCommand("setContext", "selfTraining.initialized", Boolean(workspace() && existsSync(configPath(workspace()!.fsPath))));
  void setInitialized();
  const watcher = vscode.workspace.createFileSystemWatcher("**/.selftrain/{config.json,reviews.jsonl,runs/*/manifest.json}");
  const lens = new RecordLens(context.extensionUri, workspace);
  context.subscriptions.push(lens, { dispose: () => DashboardPanel.disposeCurrent() });
  const onFiles = (): void => {
    void setInitialized();
    tree.refresh();
    lens.refresh();
  };
  context.subscriptions.push(watcher, watcher.onDidCreate(onFiles), watcher.onDidChange(onFiles), watcher.onDidDelete(onFiles));

  const needWorkspace = (): vscode.Uri | undefined => {
    const ws = workspace();
    if (!ws) void vscode.window.showWarningMessage("Open a folder first: Self-Training works on a workspace folder.");
    else if (!existsSync(configPath(ws.fsPath))) {
      void vscode.window.showWarningMessage("No self-training set-up in this workspace.", "Initialize Workspace").then((a) => a && vscode.commands.executeCommand("selfTraining.initWorkspace"));
      return undefined;
    }
    return ws;
  };
  const reportError = (e: unknown): void => {
    const message = e instanceof Error ? e.message : String(e);
    output.error(message);
    void vscode.window.showErrorMessage(message, "Show Log").then((a) => a && output.show());
  };
  const command = (id: string, fn: (...args: never[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await fn(...args);
      } catch (e) {
        reportError(e);
      }
    }));
  };
  /** Records a decision from the explorer, a CodeLens or a command; every view then shows it. */
  const decide = (make: () => ReviewDecision | null): void => {
    const ws = needWorkspace();
    const decision = ws ? make() : null;
    if (!ws || !decision) return;
    new ReviewLog(selftrainDir(ws.fsPath)).append(decision);
    tree.refresh();
    lens.refresh();
    ReviewPanel.refreshIfOpen();
  };
  /** The sample a command is about: an explorer node, or `{hash}` from a CodeLens. */
  const sampleHash = (arg?: ExplorerNode | { hash: string }): string | null => (arg && "hash" in arg ? arg.hash : arg?.kind === "sample" ? arg.s.hash : null);
  const newestRun = async (ws: vscode.Uri): Promise<RunStore | null> => {
    const ids = RunStore.list(selftrainDir(ws.fsPath));
    return ids.length ? RunStore.open(selftrainDir(ws.fsPath), ids[ids.length - 1]!) : null;
  };

  output.info(`activated in ${(performance.now() - started).toFixed(1)} ms`);

  command("selfTraining.startRound", async () => {
    const ws = needWorkspace();
    if (ws) await runs.run(ws, { kind: "runRound" });
  });
  command("selfTraining.warmup", async () => {
    const ws = needWorkspace();
    if (!ws) return;
    const plan = warmupPlan((await newestRun(ws))?.manifest ?? null);
    if (plan.action === "ask") {
      const rounds = `${plan.rounds} finished round${plan.rounds === 1 ? "" : "s"} after its warm-up`;
      const answer = await vscode.window.showWarningMessage(`Start a new run? The current run ${plan.runId} has ${rounds}.`, { modal: true, detail: "The new run becomes the one Start Round, Review and Export use; the current run is kept." }, "Start New Run");
      if (answer !== "Start New Run") return;
    }
    await runs.run(ws, plan.action === "resume" ? { kind: "runRound", round: 0, runId: plan.runId } : { kind: "runRound", round: 0, newRun: true });
  });
  command("selfTraining.evaluate", async () => {
    const ws = needWorkspace();
    if (ws) await runs.run(ws, { kind: "evaluate" });
  });
  command("selfTraining.stop", () => runs.stop());
  command("selfTraining.refresh", () => tree.refresh());
  command("selfTraining.openConfig", async () => {
    const ws = needWorkspace();
    if (ws) await vscode.window.showTextDocument(vscode.Uri.file(configPath(ws.fsPath)));
  });
  command("selfTraining.initWorkspace", async () => {
    const ws = workspace();
    if (!ws) return void vscode.window.showWarningMessage("Open a folder first: Self-Training works on a workspace folder.");
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage("Trust this workspace to set up self-training in it.");
    const pick = await vscode.window.showQuickPick([
      { label: "$(file) Use a data set file…", id: "file", detail: "GSM8K-style JSONL: {\"question\", \"answer\"} with <<calculations>> and #### answer" },
      { label: "$(sparkle) Generate the built-in synthetic task", id: "synthetic", detail: "Arithmetic word problems a small model learns on a CPU" },
    ], { title: "Initialize Self-Training" });
    if (!pick) return;
    let train = "";
    let test = "";
    if (pick.id === "file") {
      const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, defaultUri: ws, filters: { "JSON Lines": ["jsonl"] }, title: "Training data set" });
      if (!chosen?.[0]) return;
      train = chosen[0].fsPath;
    }
    // Asked before anything is written: Cancel leaves the workspace exactly as it was.
    const force = existsSync(configPath(ws.fsPath));
    if (force && (await vscode.window.showWarningMessage("Replace the existing .selftrain/config.json?", { modal: true, detail: "Runs, reviews and data files are kept." }, "Replace")) !== "Replace") return;
    if (pick.id === "synthetic") {
      // Beside any data already there (data/, else data-2/ …): existing data files are never overwritten.
      const set = writeSyntheticSet(freeDataFolder(ws.fsPath), 0, 2000, 0, 500, 4);
      train = join(set.dir, "train.jsonl");
      test = join(set.dir, "test.jsonl");
    }
    const file = await initWorkspace(ws.fsPath, { train, test, overrides: settingsOverrides(), force });
    await setInitialized();
    tree.refresh();
    await vscode.window.showTextDocument(vscode.Uri.file(file));
  });
  command("selfTraining.checkDataset", async (uri?: vscode.Uri) => {
    const file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
    if (!file) return void vscode.window.showWarningMessage("Open a JSONL data set file first.");
    const client = await engine.get();
    const events = await client.run({ type: "checkDataset", id: randomUUID(), file });
    for (const e of events) {
      if (e.type !== "datasetReport") continue;
      output.info(formatDatasetReport(e.report));
      const r = e.report;
      const msg = `${r.examples} examples, ${r.errorCount} bad lines, ${r.annotationsCorrect}/${r.annotations} calculator annotations correct.`;
      const show = r.errorCount > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      void show(msg, "Show Log").then((a) => a && output.show());
    }
  });
  const onSample = (make: (hash: string) => ReviewDecision) => (arg?: ExplorerNode | { hash: string }) => decide(() => {
    const hash = sampleHash(arg);
    return hash ? make(hash) : null;
  });
  command("selfTraining.markCorrect", onSample((hash) => ({ kind: "mark", verdict: "correct", hash })));
  command("selfTraining.markWrong", onSample((hash) => ({ kind: "mark", verdict: "wrong", hash })));
  command("selfTraining.exclude", onSample((hash) => ({ kind: "exclude-sample", hash })));
  command("selfTraining.copyAsJson", async (node?: ExplorerNode) => {
    if (node?.kind === "sample") await vscode.env.clipboard.writeText(JSON.stringify({ questionId: node.q.questionId, question: node.q.question, gold: node.q.gold, ...node.s }, null, 2));
  });
  const reviewDeps = (ws: vscode.Uri): ReviewDeps => ({
    extensionUri: context.extensionUri, workspace: ws, log: output,
    roundIndex: (runId, round) => tree.roundIndex(runId, round),
    onDecided: () => {
      tree.refresh();
      lens.refresh();
    },
  });
  command("selfTraining.reviewRationales", async (node?: ExplorerNode | ReviewTarget) => {
    const ws = needWorkspace();
    if (!ws) return;
    let target: ReviewTarget | undefined;
    if (node && "runId" in node && "round" in node) {
      target = { runId: node.runId, round: node.round };
      if ("kind" in node && node.kind === "sample") Object.assign(target, { questionId: node.q.questionId, hash: node.s.hash });
      else if ("kind" in node && node.kind === "question") target.questionId = node.q.questionId;
      else if (!("kind" in node)) Object.assign(target, node);
    }
    await ReviewPanel.show(reviewDeps(ws), target);
  });
  command("selfTraining.openDashboard", async () => {
    const ws = needWorkspace();
    if (ws) DashboardPanel.show(context.extensionUri, ws, output, runs);
  });
  command("selfTraining.revealRound", async (at?: { runId: string; round: number }) => {
    if (!at) return;
    await vscode.commands.executeCommand("selfTraining.explorer.focus");
    const node = await tree.roundNode(at.runId, at.round);
    if (node) await view.reveal(node, { select: true, focus: true, expand: true });
  });
  command("selfTraining.swapPair", (pair?: { questionId: string; chosenHash: string; rejectedHash: string }) => {
    if (pair) decide(() => ({ kind: "force-pair", questionId: pair.questionId, chosenHash: pair.rejectedHash, rejectedHash: pair.chosenHash }));
  });
  command("selfTraining.excludePair", (pair?: { questionId: string; chosenHash: string; rejectedHash: string }) => {
    if (pair) decide(() => ({ kind: "exclude-pair", chosenHash: pair.chosenHash, rejectedHash: pair.rejectedHash }));
  });
  command("selfTraining.exportPairs", async () => {
    const ws = needWorkspace();
    const run = ws ? await newestRun(ws) : null;
    if (!ws || !run) return void vscode.window.showInformationMessage("Nothing to export yet: no rounds have run.");
    const rounds = run.manifest.rounds.filter((r) => r.stages.pairs?.state === "done" || r.stages["pseudo-labels"]?.state === "done").map((r) => r.round);
    if (rounds.length === 0) return void vscode.window.showInformationMessage("No round has pairs or pseudo-labels yet.");
    const out = join(ws.fsPath, "selftrain-export");
    const r = await exportRound(ws.fsPath, run.runId, Math.max(...rounds), out);
    const action = await vscode.window.showInformationMessage(`Exported ${r.pairs} pairs (TRL prompt/chosen/rejected) and ${r.pseudoLabels} pseudo-labels.`, "Open");
    if (action) await vscode.window.showTextDocument(vscode.Uri.file(r.files[0]!));
  });
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
