import * as vscode from "vscode";
import { configPath, warmupPlan } from "../../core/selftrain/workspace";
import { DashboardPanel } from "../dashboardPanel";
import type { Host } from "../host";

/** Start Round, Warm-up, Evaluate, Stop, the dashboard and the config: the commands that run or show a run. */
export function registerRunCommands(host: Host): void {
  const { runs } = host;
  host.command("selfTraining.startRound", async () => {
    const ws = host.needWorkspace();
    if (ws) await runs.run(ws, { kind: "runRound" });
  });
  host.command("selfTraining.warmup", async () => {
    const ws = host.needWorkspace();
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
    const ws = host.needWorkspace();
    if (ws) await runs.run(ws, { kind: "evaluate" });
  });
  host.command("selfTraining.stop", () => runs.stop());
  host.command("selfTraining.refresh", () => host.tree.refresh());
  host.command("selfTraining.openConfig", async () => {
    const ws = host.needWorkspace();
    if (ws) await vscode.window.showTextDocument(vscode.Uri.file(configPath(ws.fsPath)));
  });
  host.command("selfTraining.openDashboard", async () => {
    const ws = host.needWorkspace();
    if (ws) DashboardPanel.show(host.context.extensionUri, ws, host.output, runs);
  });
}
