import * as vscode from "vscode";
import { existsSync } from "node:fs";
import type { RunStore } from "../core/store/runStore";
import { SAMPLE_FILES } from "../core/review/reviewQuestion";

/** Opens the round's JSONL file holding a sample's record, with that line selected. */
export async function openSampleRecord(store: RunStore, round: number, hash: string): Promise<boolean> {
  for (const [file] of SAMPLE_FILES) {
    const path = store.path(round, file);
    if (!existsSync(path)) continue;
    const doc = await vscode.workspace.openTextDocument(path);
    const at = doc.getText().indexOf(`"hash":${JSON.stringify(hash)}`);
    if (at < 0) continue;
    const editor = await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
    const line = doc.lineAt(doc.positionAt(at).line);
    editor.selection = new vscode.Selection(line.range.start, line.range.end);
    editor.revealRange(line.range, vscode.TextEditorRevealType.InCenter);
    return true;
  }
  void vscode.window.showInformationMessage("That sample's record is not in this round's files.");
  return false;
}
