import * as vscode from "vscode";
import { randomUUID } from "node:crypto";
import { EngineClient } from "../engine/client";
import { formatDatasetReport } from "../core/data/datasetReport";

/** Builds the services and registers them; every long-lived object is disposed with the extension. */
export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Self-Training", { log: true });
  context.subscriptions.push(output);
  const engine = new EngineClient(vscode.Uri.joinPath(context.extensionUri, "dist", "engine.js").fsPath);
  let started: Promise<void> | null = null;
  const ensureEngine = (): Promise<void> => {
    started ??= engine.start().catch((e: unknown) => {
      started = null;
      throw e;
    });
    return started;
  };
  engine.onExit((code, signal) => {
    started = null;
    if (code !== 0 && code !== null) output.error(`engine exited with code ${code}`);
    if (signal) output.warn(`engine stopped by ${signal}`);
  });
  context.subscriptions.push({ dispose: () => engine.dispose() });

  context.subscriptions.push(
    vscode.commands.registerCommand("selfTraining.checkDataset", async (uri?: vscode.Uri) => {
      const file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
      if (!file) {
        void vscode.window.showWarningMessage("Open a JSONL data set file first.");
        return;
      }
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Checking data set", cancellable: false },
        async () => {
          try {
            await ensureEngine();
            const events = await engine.run({ type: "checkDataset", id: randomUUID(), file });
            for (const e of events) {
              if (e.type === "datasetReport") {
                output.info(formatDatasetReport(e.report));
                const r = e.report;
                const msg = `${r.examples} examples, ${r.errorCount} bad lines, ${r.annotationsCorrect}/${r.annotations} calculator annotations correct.`;
                const action = await (r.errorCount > 0 ? vscode.window.showWarningMessage(msg, "Show Log") : vscode.window.showInformationMessage(msg, "Show Log"));
                if (action === "Show Log") output.show();
              }
            }
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            output.error(message);
            const action = await vscode.window.showErrorMessage(message, "Show Log");
            if (action === "Show Log") output.show();
          }
        },
      );
    }),
  );
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
