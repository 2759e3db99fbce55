import * as vscode from "vscode";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { totalmem } from "node:os";
import { describeInspection, formatCount, inspectModelFolder } from "../../core/model/inspectModel";
import { estimateMemory, memoryVerdict } from "../../core/model/memoryEstimate";
import { memorySettings } from "../../core/selftrain/memorySettings";
import { defaultConfig, defaultsNote, describeTraining, parseConfig } from "../../core/selftrain/config";
import { formatDatasetReport } from "../../core/data/datasetReport";
import { writeSyntheticSet, freeDataFolder } from "../../core/data/syntheticFiles";
import { initWorkspace, configPath, exportRound, readWorkspaceConfig } from "../../core/selftrain/workspace";
import { estimateNextRound, estimateWorkspace, formatEstimate } from "../../core/selftrain/estimate";
import { askInitialize, SYNTHETIC_SIZES, type InitAnswers } from "../../core/selftrain/initQuestions";
import { storedPath } from "../../core/selftrain/storedPath";
import { settingsOverrides } from "../settings";
import type { Host } from "../host";

/**
 * "Use a model folder…": a folder picker, then what the folder holds, the settings it will get and whether it fits
 * this machine with them, before anything is written. Returns model.init (relative to the workspace when inside
 * it), or null. `overrides` are the person's selfTraining.* settings, which init writes over the defaults.
 */
async function chooseModelFolder(ws: vscode.Uri, overrides: Record<string, unknown>, data: InitAnswers["data"]): Promise<string | null> {
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
  const init = storedPath(ws.fsPath, dir);
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
  // How long the warm-up and round 1 take with this model on the chosen data, where the person decides.
  let time: string[] = [];
  if (data.kind === "file") {
    try {
      const e = estimateNextRound({ ...config, data: { ...config.data, train: data.train, test: data.test } }, ws.fsPath, null);
      time = ["", `Estimated time: ${e.what}, ${formatEstimate(e.seconds)} on this machine (${e.basis}).`];
    } catch {
      // no estimate: the data file is read again when the round starts, and its problems are named then
    }
  }
  const detail = [...describeInspection(m), "", "Training settings (a pretrained model's; docs/pretrained-defaults.md):", ...describeTraining(config), "", "Estimated peak memory:", ...verdict.lines, ...time].join("\n");
  const title = `${m.family}, ${formatCount(m.parameters)} parameters: ${verdict.fits ? "fits this machine" : "does not fit this machine with these settings"}`;
  const answer = verdict.fits
    ? await vscode.window.showInformationMessage(title, { modal: true, detail }, "Use This Model")
    : await vscode.window.showWarningMessage(title, { modal: true, detail }, "Use Anyway");
  return answer ? init : null;
}

/** data.devSize and data.testSize as config.json will have them: the person's settings over the defaults. */
function splitSettings(overrides: Record<string, unknown>): { devSize: number; testSize: number } {
  try {
    return parseConfig(overrides, "selfTraining settings").data;
  } catch {
    // A mistake in the settings is refused, naming it, when the config is written; the defaults describe the split until then.
    return defaultConfig().data;
  }
}

/** Initialize Workspace, Check Dataset File and Export: the commands around the data and what a run yields. */
export function registerSetupCommands(host: Host): void {
  host.command("selfTraining.initWorkspace", async () => {
    const ws = host.workspace();
    if (!ws) return void vscode.window.showWarningMessage("Open a folder first: Self-Training works on a workspace folder.");
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage("Trust this workspace to set up self-training in it.");
    const overrides: Record<string, unknown> = settingsOverrides();
    // The data, its test set, then the model: two questions, each answered by the person (initQuestions.ts).
    const answers = await askInitialize({
      pick: async (title, choices) => (await vscode.window.showQuickPick(choices, { title, ignoreFocusOut: true }))?.id ?? null,
      file: async (title) => (await vscode.window.showOpenDialog({ canSelectMany: false, defaultUri: ws, filters: { "JSON Lines": ["jsonl"] }, title }))?.[0]?.fsPath ?? null,
      modelFolder: (data) => chooseModelFolder(ws, overrides, data),
    }, splitSettings(overrides));
    if (!answers) return;
    if (answers.model !== "new") overrides["model"] = { ...(overrides["model"] as object | undefined), init: answers.model };
    let train = answers.data.kind === "file" ? answers.data.train : "";
    let test = answers.data.kind === "file" ? answers.data.test : "";
    // Asked before anything is written: Cancel leaves the workspace exactly as it was.
    const force = existsSync(configPath(ws.fsPath));
    if (force && (await vscode.window.showWarningMessage("Replace the existing .selftrain/config.json?", { modal: true, detail: "Runs, reviews and data files are kept." }, "Replace")) !== "Replace") return;
    if (answers.data.kind === "synthetic") {
      // Beside any data already there (data/, else data-2/ …): existing data files are never overwritten.
      const set = writeSyntheticSet(freeDataFolder(ws.fsPath), 0, SYNTHETIC_SIZES.train, 0, SYNTHETIC_SIZES.test, 4);
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
    // What was chosen, the test set included: a split taken from the training file is said, not left to be found.
    const chosen = `data: ${basename(train)}, ${answers.testSet}; model: ${answers.model === "new" ? "new, trained from scratch" : answers.model}`;
    host.output.info(chosen);
    const action = await vscode.window.showInformationMessage(
      `Workspace ready. Next: ▶ Start round${next ? ` (${next.what}), ${formatEstimate(next.seconds)} on this machine` : ""}. The settings are open beside it. ${chosen[0]!.toUpperCase()}${chosen.slice(1)}.`,
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
