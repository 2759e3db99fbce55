import * as vscode from "vscode";
import { configPath, warmupPlan } from "../../core/selftrain/workspace";
import { estimateWorkspace, longJobQuestion } from "../../core/selftrain/estimate";
import { DashboardPanel } from "../dashboardPanel";
import type { Host } from "../host";
import type { ConfigPlace } from "../datasetTree";

function isConfigPlace(x: unknown): x is ConfigPlace {
  const p = x as Partial<ConfigPlace> | null | undefined;
  return typeof p === "object" && p !== null && [p.line, p.character, p.length].every((n) => Number.isInteger(n) && (n as number) >= 0);
}

/** Start Round, Warm-up, Evaluate, Stop, the dashboard and the config: the commands that run or show a run. */
export function registerRunCommands(host: Host): void {
  const { runs } = host;
  host.command("selfTraining.startRound", async () => {
    const ws = host.needConfig();
    if (!ws) return;
    // A job of hours asks first, saying how long and what makes it shorter; an estimate that fails does not stop it.
    const ask = await estimateWorkspace(ws.fsPath).then(longJobQuestion, () => null);
    if (ask) {
      const answer = await vscode.window.showWarningMessage(ask.message, { modal: true, detail: ask.detail }, "Start", "Open Settings");
      if (answer === "Open Settings") await vscode.commands.executeCommand("selfTraining.openConfig");
      if (answer !== "Start") return;
    }
    await runs.run(ws, { kind: "runRound" });
  });
  host.command("selfTraining.warmup", async () => {
    const ws = host.needConfig();
    if (!ws) return;
    const plan = warmupPlan((await host.newestRun(ws))?.manifest ?? null);
    if (plan.action === "ask") {
      const rounds = `${plan.rounds} finished round${plan.rounds === 1 ? "" : "s"} after its warm-up`;
      const answer = await vscode.window.showWarningMessage(`Start a new run? The current run ${plan.runId} has ${rounds}.`, { modal: true, detail: "The new run becomes the one Start Round, Review and Export use; the current run is kept." }, "Start New Run");
      if (answer !== "Start New Run") return;
    }
    await runs.run(ws, plan.action === "resume" ? { kind: "runRound", round: 0, runId: plan.runId } : { kind: "runRound", round: 0, newRun: true });
  });
  host.command("selfTraining.evaluate", async () => {
    const ws = host.needConfig();
    if (ws) await runs.run(ws, { kind: "evaluate" });
  });
  host.command("selfTraining.stop", () => runs.stop());
  host.command("selfTraining.refresh", () => host.tree.refresh());
  // From a problem's row or error, at the setting it names (a ConfigPlace); from the view's ⚙, at the top.
  host.command("selfTraining.openConfig", async (at?: unknown) => {
    const ws = host.needWorkspace();
    if (!ws) return;
    const place = isConfigPlace(at) ? new vscode.Range(at.line, at.character, at.line, at.character + at.length) : undefined;
    await vscode.window.showTextDocument(vscode.Uri.file(configPath(ws.fsPath)), place ? { selection: place } : undefined);
  });
  host.command("selfTraining.openDashboard", async () => {
    const ws = host.needWorkspace();
    if (ws) DashboardPanel.show(host.context.extensionUri, ws, host.output, runs);
  });
}
