import * as vscode from "vscode";
import { existsSync, statSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { selftrainDir, configPath } from "../core/selftrain/workspace";
import { groupIntact, readConfigProblems, type ConfigProblem } from "../core/selftrain/configProblems";
import { roundStages } from "../core/selftrain/stages";
import { RunStore, isInterrupted } from "../core/store/runStore";
import { ReviewLog } from "../core/store/reviewLog";
import { buildRoundIndex, questionsIn, type QuestionGroup, type QuestionSummary, type RoundIndex, type SampleSummary } from "../core/explorer/roundIndex";
import type { RunManifest, StageRecord } from "../shared/runTypes";
import { estimateWorkspace, formatEstimate, modelParameters } from "../core/selftrain/estimate";
import { dataUse, describeData, describeRun, nextStep, runProgress, samplesToReview, type DataUse, type NextStep } from "../core/explorer/treeRows";
import { describeInspection, formatCount, inspectModelFolder } from "../core/model/inspectModel";
import type { SelfTrainConfig } from "../core/selftrain/configTypes";
import type { PromptFormatSetting } from "../core/model/promptFormat";
import { sampleTally } from "../shared/reviewProtocol";

/** Tree nodes; `contextValue` on the tree items drives the context menus in package.json. */
export type ExplorerNode =
  /** What is wrong with config.json: a row per problem, which opens the file at the setting. */
  | { kind: "configProblem"; problem: ConfigProblem }
  /** The data as the next round uses it (explorer/treeRows.ts). */
  | { kind: "data"; use: DataUse }
  /** The base model: a new one trained from scratch, or a model folder (family, size). */
  | { kind: "model"; init: string; description: string; tooltip: string; error: boolean }
  | { kind: "run"; manifest: RunManifest }
  | { kind: "round"; runId: string; round: number; manifest: RunManifest }
  | { kind: "group"; runId: string; round: number; group: QuestionGroup; count: number; records?: number; pairs?: RoundIndex["pairsBy"]["mixed"] }
  | { kind: "question"; runId: string; round: number; q: QuestionSummary }
  | { kind: "sample"; runId: string; round: number; q: QuestionSummary; s: SampleSummary }
  | { kind: "more"; parent: Extract<ExplorerNode, { kind: "group" }>; offset: number }
  /** What to do next: start, resume or watch a round, or review samples (explorer/treeRows.ts). */
  | { kind: "next"; step: NextStep };

const PAGE = 500;
const GROUP_LABEL: Record<QuestionGroup, string> = { mixed: "Mixed", "all-wrong": "All wrong", "all-right": "All right", decided: "Decided by you", "pseudo-labels": "Pseudo-labels" };
const GROUP_TOOLTIP: Record<QuestionGroup, string> = {
  mixed: "Questions with right and wrong samples.",
  "all-wrong": "Questions where no sample is right.",
  "all-right": "Questions where every sample is right.",
  decided: "Questions you decided something about. They are also counted in Mixed, All wrong or All right.",
  "pseudo-labels": "Questions with pseudo-labels: right, de-duplicated SFT-step samples the next SFT trains on. They are also counted in the groups above.",
};

export class DatasetTreeProvider implements vscode.TreeDataProvider<ExplorerNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ExplorerNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Round indexes by run/round, rebuilt when a file they were read from changes. */
  private readonly indexes = new Map<string, { stamp: string; index: Promise<RoundIndex> }>();

  constructor(
    private readonly workspace: () => vscode.Uri | undefined,
    /** Whether a job is running now: a stage the manifest calls running, with no job, was interrupted. */
    private readonly jobRunning: () => boolean,
  ) {}

  private pending: ReturnType<typeof setTimeout> | undefined;

  /**
   * Redraws the tree once for a burst of changes: a decision fires a refresh from the command and another from
   * the file watcher, and a refresh landing while VS Code is still fetching an expanded node's children can
   * leave that node empty.
   */
  refresh(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.changed.fire(undefined);
    }, 100);
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    this.changed.dispose();
  }

  private stamp(store: RunStore, round: number): string {
    const files = ["samples-dpo.jsonl", "samples-sft.jsonl", "pairs.jsonl", "pseudo-labels.jsonl"].map((f) => store.path(round, f));
    files.push(join(selftrainDir(this.workspace()!.fsPath), "reviews.jsonl"));
    return files.map((f) => (existsSync(f) ? `${statSync(f).mtimeMs}:${statSync(f).size}` : "-")).join("|");
  }

  /** A round's index, read once and shared with the review until one of its files changes. */
  roundIndex(runId: string, round: number): Promise<RoundIndex> {
    return this.index(runId, round);
  }

  /** The tree node of a round, for reveal(): VS Code finds it again by its label under its parent's. */
  async roundNode(runId: string, round: number): Promise<ExplorerNode | null> {
    const store = await RunStore.open(selftrainDir(this.workspace()!.fsPath), runId);
    return store.manifest.rounds.some((r) => r.round === round) ? { kind: "round", runId, round, manifest: store.manifest } : null;
  }

  async getParent(node: ExplorerNode): Promise<ExplorerNode | undefined> {
    if (node.kind !== "round") return undefined;
    return { kind: "run", manifest: node.manifest };
  }

  private async index(runId: string, round: number): Promise<RoundIndex> {
    const ws = this.workspace()!.fsPath;
    const store = await RunStore.open(selftrainDir(ws), runId);
    const key = `${runId}/${round}`;
    const stamp = this.stamp(store, round);
    const cached = this.indexes.get(key);
    if (cached && cached.stamp === stamp) return cached.index;
    const index = buildRoundIndex(store, round, new ReviewLog(selftrainDir(ws)));
    this.indexes.set(key, { stamp, index });
    return index;
  }

  /** The newest run's next step, with the next round's estimate and the samples to review in the last finished round. */
  private async nextStep(ws: string, newest: RunManifest | null): Promise<NextStep> {
    const progress = newest ? runProgress(newest, (s) => isLive(s, this.jobRunning())) : null;
    const running = progress?.current?.state === "running";
    const estimate = running ? null : await estimateWorkspace(ws).then((e) => ({ text: formatEstimate(e.seconds), basis: e.basis })).catch(() => null);
    const last = newest && progress && !progress.current && progress.finished > 0 ? Math.max(...newest.rounds.map((r) => r.round)) : null;
    const review = newest && last !== null ? { round: last, ...samplesToReview(await this.index(newest.runId, last)) } : null;
    return nextStep(newest, progress, estimate, review);
  }

  async getChildren(node?: ExplorerNode): Promise<ExplorerNode[]> {
    const wsUri = this.workspace();
    if (!wsUri || !existsSync(configPath(wsUri.fsPath))) return []; // the welcome view shows instead
    const ws = wsUri.fsPath;
    if (!node) {
      // A config.json that cannot be read is said in place, a row per problem, above everything that does not need
      // the settings it got wrong: the runs always, Data and Model while their settings are fine.
      const read = readConfigProblems(configPath(ws));
      const config = read.config;
      const data: ExplorerNode[] = read.problems.map((problem) => ({ kind: "configProblem", problem }));
      if (config && groupIntact(read, "data")) data.push({ kind: "data", use: await dataUse(config, ws) });
      if (config && groupIntact(read, "model")) data.push(modelNode(config, ws));
      const runs = (await Promise.all(RunStore.list(selftrainDir(ws)).map((id) => RunStore.open(selftrainDir(ws), id)))).map((s) => ({ kind: "run" as const, manifest: s.manifest }));
      // The problem rows are the next step while config.json has mistakes: no round can start.
      if (read.problems.length === 0) data.push({ kind: "next", step: await this.nextStep(ws, runs.at(-1)?.manifest ?? null) });
      return [...data, ...runs.reverse()];
    }
    switch (node.kind) {
      case "run":
        return [...node.manifest.rounds].sort((a, b) => a.round - b.round).map((r) => ({ kind: "round", runId: node.manifest.runId, round: r.round, manifest: node.manifest }));
      case "round": {
        if (node.round === 0) return [];
        const index = await this.index(node.runId, node.round);
        const groups: ExplorerNode[] = (["mixed", "all-wrong", "all-right", "decided"] as const).map((group) => ({ kind: "group", runId: node.runId, round: node.round, group, count: index.counts[group], ...(group === "decided" || index.counts.pairs === 0 ? {} : { pairs: index.pairsBy[group] }) }));
        if (index.samplesFile === "samples-dpo.jsonl" || index.counts.pseudoLabels > 0) groups.push({ kind: "group", runId: node.runId, round: node.round, group: "pseudo-labels", count: index.counts["pseudo-labels"], records: index.counts.pseudoLabels });
        return groups;
      }
      case "group":
      case "more": {
        const group = node.kind === "group" ? node : node.parent;
        const offset = node.kind === "more" ? node.offset : 0;
        const all = questionsIn(await this.index(group.runId, group.round), group.group);
        const page: ExplorerNode[] = all.slice(offset, offset + PAGE).map((q) => ({ kind: "question", runId: group.runId, round: group.round, q }));
        if (offset + PAGE < all.length) page.push({ kind: "more", parent: group, offset: offset + PAGE });
        return page;
      }
      case "question":
        return [...node.q.samples, ...node.q.sftSamples].map((s) => ({ kind: "sample", runId: node.runId, round: node.round, q: node.q, s }));
      default:
        return [];
    }
  }

  async getTreeItem(node: ExplorerNode): Promise<vscode.TreeItem> {
    const None = vscode.TreeItemCollapsibleState.None;
    const Collapsed = vscode.TreeItemCollapsibleState.Collapsed;
    switch (node.kind) {
      case "configProblem": {
        const p = node.problem;
        const item = new vscode.TreeItem(`${basename(p.file)}: ${p.message}`, None);
        item.tooltip = new vscode.MarkdownString().appendText(`${p.file}:${p.line + 1}:${p.character + 1}\n\n${p.message}\n\nClick to open the file there. No round can start until it is fixed.`);
        item.iconPath = new vscode.ThemeIcon("error", new vscode.ThemeColor("list.errorForeground"));
        item.command = { command: "selfTraining.openConfig", title: "Open config.json", arguments: [configPlace(p)] };
        item.contextValue = "configProblem";
        return item;
      }
      case "data": {
        const item = new vscode.TreeItem("Data", None);
        const text = describeData(node.use);
        item.description = text.description;
        item.tooltip = new vscode.MarkdownString().appendText(text.tooltip);
        item.iconPath = new vscode.ThemeIcon(node.use.lines === null ? "error" : "database");
        item.resourceUri = vscode.Uri.file(node.use.file);
        item.command = { command: "vscode.open", title: "Open", arguments: [vscode.Uri.file(node.use.file)] };
        item.contextValue = "data";
        return item;
      }
      case "run": {
        const m = node.manifest;
        const item = new vscode.TreeItem(`Run ${m.runId}`, vscode.TreeItemCollapsibleState.Expanded);
        const progress = runProgress(m, (s) => isLive(s, this.jobRunning()));
        const text = describeRun(m, progress);
        item.description = text.description;
        item.tooltip = new vscode.MarkdownString().appendText(text.tooltip);
        const state = progress.current?.state;
        item.iconPath = new vscode.ThemeIcon(state === "running" ? "loading~spin" : state === "failed" ? "error" : "beaker");
        item.contextValue = "run";
        return item;
      }
      case "round": {
        const rec = node.manifest.rounds.find((r) => r.round === node.round)!;
        const stages = roundStages(node.round, node.manifest.mode);
        const done = stages.filter((s) => rec.stages[s]?.state === "done").length;
        const failed = stages.find((s) => rec.stages[s]?.state === "failed");
        const ev = rec.stages.eval?.counts;
        const pairs = rec.stages.pairs?.counts?.["pairs"];
        const labels = rec.stages["pseudo-labels"]?.counts?.["kept"];
        const parts = [
          node.round === 0 ? "warm-up SFT" : null,
          ev?.["testAccuracy"] !== undefined ? `test ${(100 * ev["testAccuracy"]).toFixed(1)}%` : `${done}/${stages.length} stages`,
          pairs !== undefined ? `${pairs.toLocaleString()} pairs` : null,
          labels !== undefined ? `${labels.toLocaleString()} pseudo-labels` : null,
          failed ? `${failed} failed` : null,
        ].filter(Boolean);
        const item = new vscode.TreeItem(`Round ${node.round}`, node.round === 0 ? None : Collapsed);
        item.description = parts.join(" · ");
        item.tooltip = failed ? `${failed}: ${rec.stages[failed]?.error ?? ""}` : undefined;
        const active = stages.some((s) => rec.stages[s]?.state === "running" && isLive(rec.stages[s], this.jobRunning()));
        item.iconPath = new vscode.ThemeIcon(failed ? "error" : done === stages.length ? "pass" : active ? "loading~spin" : "circle-large-outline");
        item.contextValue = "round";
        return item;
      }
      case "group": {
        const count = node.records === undefined ? node.count.toLocaleString() : `${node.records.toLocaleString()} in ${node.count.toLocaleString()} question${node.count === 1 ? "" : "s"}`;
        const item = new vscode.TreeItem(`${GROUP_LABEL[node.group]} (${count})`, node.count ? Collapsed : None);
        // The first three split the questions; these two overlap them, and say so.
        if (node.group === "decided" || node.group === "pseudo-labels") item.description = "also in the groups above";
        // Where the round's pairs come from: a question with no right sample still has gold ≻ sample pairs.
        if (node.pairs && node.pairs.pairs > 0) item.description = `${node.pairs.pairs.toLocaleString("en-US")} pairs`;
        // A string tooltip would become the row's accessible name; a Markdown one leaves it label and description.
        item.tooltip = new vscode.MarkdownString().appendText([GROUP_TOOLTIP[node.group], node.pairs ? pairsText(node.pairs) : ""].filter(Boolean).join(" "));
        item.iconPath = new vscode.ThemeIcon(node.group === "decided" ? "person" : node.group === "pseudo-labels" ? "tag" : node.group === "mixed" ? "split-horizontal" : node.group === "all-right" ? "check-all" : "close-all");
        item.contextValue = "group";
        return item;
      }
      case "more":
        return Object.assign(new vscode.TreeItem(`… more (from ${node.offset + 1})`, Collapsed), { contextValue: "more" });
      case "model": {
        const item = new vscode.TreeItem("Model", None);
        item.description = node.description;
        item.tooltip = new vscode.MarkdownString().appendText(node.tooltip);
        item.iconPath = new vscode.ThemeIcon(node.error ? "error" : "symbol-misc");
        item.contextValue = "model";
        if (node.init !== "new") item.resourceUri = vscode.Uri.file(node.init);
        return item;
      }
      case "next": {
        const step = node.step;
        const item = new vscode.TreeItem(step.label, None);
        item.description = step.description;
        item.tooltip = new vscode.MarkdownString().appendText(step.tooltip);
        item.iconPath = new vscode.ThemeIcon(step.icon);
        const a = step.action;
        item.command = { command: a.command, title: step.label, ...(a.command === "selfTraining.reviewRationales" ? { arguments: [a.target] } : {}) };
        item.contextValue = "next";
        return item;
      }
      case "question": {
        const q = node.q;
        const item = new vscode.TreeItem(`Q ${q.questionId}  "${q.question.length > 40 ? q.question.slice(0, 40) + "…" : q.question}"`, Collapsed);
        // The same words as the review's header for this question.
        item.description = [sampleTally([...q.samples, ...q.sftSamples]), q.pseudoLabels ? `${q.pseudoLabels} pseudo-label${q.pseudoLabels === 1 ? "" : "s"}` : null, q.decided ? "you decided" : null].filter(Boolean).join(" · ");
        item.tooltip = new vscode.MarkdownString().appendText(q.question).appendMarkdown(`\n\n**gold:** ${q.gold}`);
        item.iconPath = new vscode.ThemeIcon(q.decided ? "person" : "question");
        item.contextValue = "question";
        return item;
      }
      case "sample": {
        const s = node.s;
        const item = new vscode.TreeItem(`${s.correct ? "✓" : "✗"} ${s.stage === "dpo" ? "sample" : "SFT-step sample"} ${s.index + 1}`, None);
        // The badges say what the next round does with it: a person's decisions win over this round's roles.
        const bits = [`#### ${s.answer ?? "?"}`, ...s.next, s.arithmeticErrors ? `${s.arithmeticErrors} wrong calculation${s.arithmeticErrors > 1 ? "s" : ""}` : null, s.decided ? `you: ${s.decided}` : null];
        item.description = bits.filter(Boolean).join(" · ");
        item.tooltip = new vscode.MarkdownString().appendCodeblock(s.preview, "text");
        if (s.nextWhy.length > 0) item.tooltip.appendText(s.nextWhy.join("\n"));
        const icon = s.decided === "excluded" ? "circle-slash" : s.correct ? "pass-filled" : "error";
        item.iconPath = new vscode.ThemeIcon(icon, new vscode.ThemeColor(s.correct ? "testing.iconPassed" : "testing.iconFailed"));
        item.contextValue = s.decided ? "sample.decided" : "sample";
        item.command = { command: "selfTraining.reviewRationales", title: "Review", arguments: [node] };
        return item;
      }
    }
  }
}

/** Where "Open config.json" puts the cursor for a problem: selfTraining.openConfig's argument. */
export interface ConfigPlace {
  line: number;
  character: number;
  length: number;
}

export function configPlace(p: ConfigProblem): ConfigPlace {
  return { line: p.line, character: p.character, length: p.length };
}

/** The base model under Data: family and size, from the folder's small files (no weights are read). */
function modelNode(config: SelfTrainConfig, ws: string): ExplorerNode {
  if (config.model.init === "new") {
    const m = config.model;
    return { kind: "model", init: "new", description: `new llama · ${formatCount(modelParameters(config, ws))} · trained from scratch`, tooltip: `A new model: ${m.layers} layers, hidden ${m.hiddenSize}, ${m.vocabSize}-token BPE vocabulary trained on the data.`, error: false };
  }
  const dir = isAbsolute(config.model.init) ? config.model.init : resolve(ws, config.model.init);
  // The tree is redrawn often while a round runs: a folder's headers are read again only when its files change.
  const stamp = ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json"].map((f) => (existsSync(join(dir, f)) ? statSync(join(dir, f)).mtimeMs : "-")).join("|") + `|${config.model.promptFormat}`;
  const cached = modelNodes.get(dir);
  if (cached?.stamp === stamp) return cached.node;
  // The chat template is checked (rendered) unless the workspace's prompts are plain, as the round would use it.
  const node = inspectedNode(dir, config.model.promptFormat);
  modelNodes.set(dir, { stamp, node });
  return node;
}

const modelNodes = new Map<string, { stamp: string; node: ExplorerNode }>();

function inspectedNode(dir: string, promptFormat: PromptFormatSetting): ExplorerNode {
  try {
    const m = inspectModelFolder(dir, { promptFormat });
    return { kind: "model", init: dir, description: `${m.family} · ${formatCount(m.parameters)} · ${Object.keys(m.dtypes).join("/")} · ${basename(dir)}`, tooltip: describeInspection(m).join("\n"), error: false };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { kind: "model", init: dir, description: `${basename(dir)}: cannot be used`, tooltip: why, error: true };
  }
}

/** "120 pairs come from these questions: 120 with the gold rationale (…) as the chosen side, 0 sample ≻ sample." */
function pairsText(p: { pairs: number; sampleChosen: number }): string {
  if (p.pairs === 0) return "None of the round's pairs come from these questions.";
  const other = p.pairs - p.sampleChosen;
  return `${p.pairs.toLocaleString("en-US")} of the round's pairs come from these questions: ${other.toLocaleString("en-US")} gold ≻ sample (the chosen side is the gold rationale, an earlier round's sample or yours), ${p.sampleChosen.toLocaleString("en-US")} sample ≻ sample.`;
}

/** A stage marked running is live while its process is; one without a pid (older runs) while this window's job runs. */
function isLive(s: StageRecord | undefined, jobRunning: boolean): boolean {
  return s?.pid !== undefined ? !isInterrupted(s) : jobRunning;
}
