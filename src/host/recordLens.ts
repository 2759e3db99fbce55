import * as vscode from "vscode";
import { basename, dirname } from "node:path";
import { ReviewLog, pairKey } from "../core/store/reviewLog";
import { selftrainDir } from "../core/selftrain/workspace";

/** A round's records file: `.selftrain/runs/<run>/round-<N>/samples-*.jsonl` or `pairs.jsonl`. */
export function roundFileOf(path: string): { runId: string; round: number; kind: "samples" | "pairs" } | null {
  const name = basename(path);
  const kind = /^samples-[\w-]+\.jsonl$/.test(name) ? "samples" : name === "pairs.jsonl" ? "pairs" : null;
  const roundDir = basename(dirname(path));
  const m = /^round-(\d+)$/.exec(roundDir);
  const runs = dirname(dirname(dirname(path)));
  if (!kind || !m || basename(runs) !== "runs" || basename(dirname(runs)) !== ".selftrain") return null;
  return { runId: basename(dirname(dirname(path))), round: Number(m[1]), kind };
}

interface LineRecord {
  line: number;
  questionId: string;
  hash?: string;
  chosenHash?: string;
  rejectedHash?: string;
}

/** Only these fields are needed; matching them by pattern avoids parsing rationales on every keystroke. */
const FIELD = (name: string): RegExp => new RegExp(`"${name}":"((?:[^"\\\\]|\\\\.)*)"`);
const QUESTION = FIELD("questionId");
const HASH = FIELD("hash");
const CHOSEN = FIELD("chosenHash");
const REJECTED = FIELD("rejectedHash");

function recordAt(doc: vscode.TextDocument, line: number): LineRecord | null {
  const text = doc.lineAt(line).text;
  const q = QUESTION.exec(text)?.[1];
  if (!q) return null;
  return { line, questionId: JSON.parse(`"${q}"`) as string, hash: HASH.exec(text)?.[1], chosenHash: CHOSEN.exec(text)?.[1], rejectedHash: REJECTED.exec(text)?.[1] };
}

/** Lenses are made for the lines on screen (and a margin) only: a 50,000-line file stays cheap to scroll. */
const MARGIN = 50;

/**
 * Inline review in a round's JSONL files: CodeLens above each record ("Review · Mark right · Mark wrong" for
 * samples, "Review · Swap · Exclude pair" for pairs) and a gutter decoration with the person's decision for
 * records that carry one.
 */
export class RecordLens implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly decided: vscode.TextEditorDecorationType;

  constructor(
    extensionUri: vscode.Uri,
    private readonly workspace: () => vscode.Uri | undefined,
  ) {
    this.decided = vscode.window.createTextEditorDecorationType({
      gutterIconPath: vscode.Uri.joinPath(extensionUri, "media", "decided.svg"),
      gutterIconSize: "contain",
      after: { color: new vscode.ThemeColor("textLink.foreground"), margin: "0 0 0 2em", fontStyle: "italic" },
      overviewRulerColor: new vscode.ThemeColor("textLink.foreground"),
      overviewRulerLane: vscode.OverviewRulerLane.Right,
    });
    this.disposables.push(
      this.changed,
      this.decided,
      vscode.languages.registerCodeLensProvider([{ pattern: "**/.selftrain/runs/*/round-*/samples-*.jsonl" }, { pattern: "**/.selftrain/runs/*/round-*/pairs.jsonl" }], this),
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => {
        if (roundFileOf(e.textEditor.document.uri.fsPath)) {
          this.changed.fire();
          this.decorate(e.textEditor);
        }
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.refresh()),
    );
    this.refresh();
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }

  /** After a decision anywhere: lenses and decorations are redrawn. */
  refresh(): void {
    this.changed.fire();
    for (const editor of vscode.window.visibleTextEditors) this.decorate(editor);
  }

  private visibleLines(doc: vscode.TextDocument): number[] {
    const lines = new Set<number>();
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document !== doc) continue;
      for (const r of editor.visibleRanges) {
        for (let l = Math.max(0, r.start.line - MARGIN); l <= Math.min(doc.lineCount - 1, r.end.line + MARGIN); l++) lines.add(l);
      }
    }
    if (lines.size === 0) for (let l = 0; l < Math.min(doc.lineCount, 200); l++) lines.add(l);
    return [...lines].sort((a, b) => a - b);
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const file = roundFileOf(doc.uri.fsPath);
    if (!file) return [];
    const lenses: vscode.CodeLens[] = [];
    for (const line of this.visibleLines(doc)) {
      const r = recordAt(doc, line);
      if (!r) continue;
      const range = new vscode.Range(line, 0, line, 0);
      const target = { runId: file.runId, round: file.round, questionId: r.questionId, hash: r.hash ?? r.chosenHash };
      lenses.push(new vscode.CodeLens(range, { title: "Review", command: "selfTraining.reviewRationales", arguments: [target] }));
      if (file.kind === "samples" && r.hash) {
        lenses.push(new vscode.CodeLens(range, { title: "Mark right", command: "selfTraining.markCorrect", arguments: [{ hash: r.hash }] }));
        lenses.push(new vscode.CodeLens(range, { title: "Mark wrong", command: "selfTraining.markWrong", arguments: [{ hash: r.hash }] }));
      } else if (file.kind === "pairs" && r.chosenHash && r.rejectedHash) {
        const pair = { questionId: r.questionId, chosenHash: r.chosenHash, rejectedHash: r.rejectedHash };
        lenses.push(new vscode.CodeLens(range, { title: "Swap", command: "selfTraining.swapPair", arguments: [pair] }));
        lenses.push(new vscode.CodeLens(range, { title: "Exclude pair", command: "selfTraining.excludePair", arguments: [pair] }));
      }
    }
    return lenses;
  }

  private decorate(editor: vscode.TextEditor): void {
    const file = roundFileOf(editor.document.uri.fsPath);
    const ws = this.workspace();
    if (!file || !ws) return;
    const log = new ReviewLog(selftrainDir(ws.fsPath));
    const effective = log.effective();
    const verdicts = log.sampleVerdicts(effective);
    const excluded = log.excludedSamples(effective);
    const excludedPairs = log.excludedPairs(effective);
    const forced = new Set(log.forcedPairs(effective).map((f) => pairKey(f.chosenHash, f.rejectedHash)));
    const notes = log.notes(effective);
    const options: vscode.DecorationOptions[] = [];
    for (const line of this.visibleLines(editor.document)) {
      const r = recordAt(editor.document, line);
      if (!r) continue;
      const said: string[] = [];
      if (file.kind === "samples" && r.hash) {
        const v = verdicts.get(r.hash);
        if (v) said.push(v === "correct" ? "marked right" : "marked wrong");
        if (excluded.has(r.hash)) said.push("excluded");
        if (notes.has(r.hash)) said.push(`note: ${notes.get(r.hash)!.at(-1)}`);
      } else if (r.chosenHash && r.rejectedHash) {
        if (forced.has(pairKey(r.rejectedHash, r.chosenHash))) said.push("swapped");
        else if (excludedPairs.has(pairKey(r.chosenHash, r.rejectedHash))) said.push("pair excluded");
      }
      if (said.length === 0) continue;
      const end = editor.document.lineAt(line).range.end;
      options.push({ range: new vscode.Range(end, end), hoverMessage: `Decided by you: ${said.join(", ")}`, renderOptions: { after: { contentText: `← you: ${said.join(", ")}` } } });
    }
    editor.setDecorations(this.decided, options);
  }
}
