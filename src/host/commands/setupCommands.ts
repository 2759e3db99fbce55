import * as vscode from "vscode";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import { totalmem } from "node:os";
import { describeInspection, formatCount, inspectModelFolder } from "../../core/model/inspectModel";
import { estimateMemory, memoryVerdict } from "../../core/model/memoryEstimate";
import { memorySettings } from "../../core/selftrain/memorySettings";
import { defaultsNote, describeTraining, parseConfig } from "../../core/selftrain/config";
import { formatDatasetReport } from "../../core/data/datasetReport";
import { writeSyntheticSet, freeDataFolder } from "../../core/data/syntheticFiles";
import { initWorkspace, configPath, exportRound, readWorkspaceConfig } from "../../core/selftrain/workspace";
import { estimateWorkspace, formatEstimate } from "../../core/selftrain/estimate";
import { settingsOverrides } from "../settings";
import type { Host } from "../host";

/**
 * "Use a model folder…": a folder picker, then what the folder holds, the settings it will get and whether it fits
 * this machine with them, before anything is written. Returns model.init (relative to the workspace when inside
 * it), or null. `overrides` are the person's selfTraining.* settings, which init writes over the defaults.
 */
async function chooseModelFolder(ws: vscode.Uri, overrides: Record<string, unknown>): Promise<string | null> {
  const chosen = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, defaultUri: ws, title: "Model folder (config.json, safetensors, tokenizer.json)", openLabel: "Inspect" });
  const dir = chosen?.[0]?.fsPath;
  if (!dir) return null;
  let m;
  try {
    m = inspectModelFolder(dir);
  } catch (e) {
    void vscode.window.showErrorMessage(`Cannot use this model: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
  const rel = relative(ws.fsPath, dir);
  const init = rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : dir;
  // The settings init will write (a pretrained model's defaults under the person's settings), checked now: a
  // learning rate set for new models is refused here, before anything is written, naming the setting.
  let config;
  try {
    config = parseConfig({ ...overrides, model: { ...(overrides["model"] as object | undefined), init } }, "selfTraining settings");
  } catch (e) {
    void vscode.window.showErrorMessage(`Cannot use this model with these settings: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
  const verdict = memoryVerdict(estimateMemory(m.config, memorySettings(config)), totalmem());
  const detail = [...describeInspection(m), "", "Training settings (a pretrained model's; docs/pretrained-defaults.md):", ...describeTraining(config), "", "Estimated peak memory:", ...verdict.lines].join("\n");
  const title = `${m.family}, ${formatCount(m.parameters)} parameters: ${verdict.fits ? "fits this machine" : "does not fit this machine with these settings"}`;
  const answer = verdict.fits
    ? await vscode.window.showInformationMessage(title, { modal: true, detail }, "Use This Model")
    : await vscode.window.showWarningMessage(title, { modal: true, detail }, "Use Anyway");
  return answer ? init : null;
}

/** Initialize Workspace, Check Dataset File and Export: the commands around the data and what a run yields. */
export function registerSetupCommands(host: Host): void {
  host.command("selfTraining.initWorkspace", async () => {
    const ws = host.workspace();
    if (!ws) return void vscode.window.showWarningMessage("Open a folder first: Self-Training works on a workspace folder.");
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage("Trust this workspace to set up self-training in it.");
    const dataChoices = [
      { label: "$(file) Use a data set file…", id: "file", detail: "GSM8K-style JSONL: {\"question\", \"answer\"} with <<calculations>> and #### answer" },
      { label: "$(sparkle) Generate the built-in synthetic task", id: "synthetic", detail: "Arithmetic word problems a small model learns on a CPU" },
    ];
    let pick = await vscode.window.showQuickPick([
      ...dataChoices,
      { label: "$(folder) Use a model folder…", id: "model", detail: "A local Hugging Face checkpoint (Qwen2.5, Qwen3, Llama 3.2, SmolLM2) instead of a new model trained from scratch" },
    ], { title: "Initialize Self-Training" });
    if (!pick) return;
    const overrides: Record<string, unknown> = settingsOverrides();
    if (pick.id === "model") {
      const model = await chooseModelFolder(ws, overrides);
      if (!model) return;
      overrides["model"] = { ...(overrides["model"] as object | undefined), init: model };
      pick = await vscode.window.showQuickPick(dataChoices, { title: "Initialize Self-Training: the data set" });
      if (!pick) return;
    }
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
    const file = await initWorkspace(ws.fsPath, { train, test, overrides, force });
    // Which defaults were written, and why (the CLI's init prints the same line).
    host.output.info(defaultsNote(readWorkspaceConfig(ws.fsPath)));
    await host.setInitialized();
    host.tree.refresh();
    await vscode.window.showTextDocument(vscode.Uri.file(file));
    // What to do next, and how long it takes, before the person has to look for it.
    const next = await estimateWorkspace(ws.fsPath).catch((e: unknown) => {
      host.output.warn(`could not estimate the next round: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    });
    host.output.info(next ? `next round: ${next.what}, ${formatEstimate(next.seconds)} (${next.basis})` : "next round: no estimate");
    const action = await vscode.window.showInformationMessage(
      `Workspace ready. Next: ▶ Start round${next ? ` (${next.what}), ${formatEstimate(next.seconds)} on this machine` : ""}. The settings are open beside it.`,
      "Start Round",
    );
    if (action === "Start Round") await vscode.commands.executeCommand("selfTraining.startRound");
  });
  host.command("selfTraining.checkDataset", async (uri?: vscode.Uri) => {
    const file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
    if (!file) return void vscode.window.showWarningMessage("Open a JSONL data set file first.");
    const client = await host.worker.get();
    const events = await client.run({ type: "checkDataset", id: randomUUID(), file });
    for (const e of events) {
      if (e.type !== "datasetReport") continue;
      host.output.info(formatDatasetReport(e.report));
      const r = e.report;
      const msg = `${r.examples} examples, ${r.errorCount} bad lines, ${r.annotationsCorrect}/${r.annotations} calculator annotations correct.`;
      const show = r.errorCount > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      void show(msg, "Show Log").then((a) => a && host.output.show());
    }
  });
  host.command("selfTraining.exportPairs", async () => {
    const ws = host.needWorkspace();
    const run = ws ? await host.newestRun(ws) : null;
    if (!ws || !run) return void vscode.window.showInformationMessage("Nothing to export yet: no rounds have run.");
    const rounds = run.manifest.rounds.filter((r) => r.stages.pairs?.state === "done" || r.stages["pseudo-labels"]?.state === "done").map((r) => r.round);
    if (rounds.length === 0) return void vscode.window.showInformationMessage("No round has pairs or pseudo-labels yet.");
    const out = join(ws.fsPath, "selftrain-export");
    const r = await exportRound(ws.fsPath, run.runId, Math.max(...rounds), out);
    const action = await vscode.window.showInformationMessage(`Exported ${r.pairs} pairs (TRL prompt/chosen/rejected) and ${r.pseudoLabels} pseudo-labels.`, "Open");
    if (action) await vscode.window.showTextDocument(vscode.Uri.file(r.files[0]!));
  });
}
