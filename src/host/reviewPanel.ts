import * as vscode from "vscode";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { WebviewApp } from "./webviewApp";
import { openSampleRecord } from "./recordLocation";
import { configPath, selftrainDir } from "../core/selftrain/workspace";
import { readConfigProblems } from "../core/selftrain/configProblems";
import { RunStore } from "../core/store/runStore";
import { ReviewLog } from "../core/store/reviewLog";
import { contentHash } from "../core/store/hash";
import { extractFinalAnswer, answersMatch } from "../core/data/answerCheck";
import type { RoundIndex } from "../core/explorer/roundIndex";
import { buildReviewQuestion, SAMPLE_FILES } from "../core/review/reviewQuestion";
import { arithmeticProblems, rationaleSpans } from "../core/review/rationaleSpans";
import { firstQuestionGroup } from "../core/review/questionRecords";
import { filterCounts, neighbourInQueue, recordsInFilter, reviewQueue } from "../core/review/reviewQueue";
import { checkReviewMessage, type ReviewFilter, type ReviewHostMessage, type ReviewQuestion, type ReviewQueue, type ReviewRunChoice, type ReviewWebviewMessage } from "../shared/reviewProtocol";
import type { ReviewDecision, SampleRecord } from "../shared/runTypes";

export interface ReviewTarget {
  runId: string;
  round: number;
  /** The user chose the filter: an empty one is shown as empty rather than widened to all questions. */
  keepFilter?: boolean;
  questionId?: string;
  /** A sample to bring into view. */
  hash?: string;
}

export interface ReviewDeps {
  extensionUri: vscode.Uri;
  workspace: vscode.Uri;
  log: vscode.LogOutputChannel;
  /** The explorer's cached round index (shared, so the review and the tree read a round once). */
  roundIndex: (runId: string, round: number) => Promise<RoundIndex>;
  /** Called after every decision: the explorer shows it too. */
  onDecided: () => void;
}

interface Place {
  store: RunStore;
  round: number;
}

/**
 * The rationale review panel: one question at a time from a round, with its samples, pairs and decisions.
 * The host owns the state (the run store and the review log); every user action is checked, written to
 * reviews.jsonl at once, and the question re-read from disk, so what the panel shows is what a new round
 * will use. Opening reads only the shown question; the round's queue is built behind it.
 */
export class ReviewPanel implements vscode.Disposable {
  private static current: ReviewPanel | undefined;
  private readonly app: WebviewApp<ReviewWebviewMessage, ReviewHostMessage>;
  private readonly disposables: vscode.Disposable[] = [];
  private place: Place | null = null;
  private filter: ReviewFilter = "mixed";
  private question: ReviewQuestion | null = null;
  private queue: ReviewQueue = { filter: "mixed", position: null, total: null, counts: {} };
  /** Drafts of hand-written rationales being edited: file → the question they belong to. */
  private readonly drafts = new Map<string, { questionId: string; question: string; gold: number; runId: string; round: number; heldId?: string | undefined; heldHash?: string | undefined }>();
  /** The rationale to focus when the next state is posted. */
  private focusHash: string | undefined;
  /** Increments on every (re)load, so a slow queue build does not overwrite a newer state. */
  private generation = 0;

  static async show(deps: ReviewDeps, target?: ReviewTarget): Promise<ReviewPanel> {
    const panel = ReviewPanel.current ?? new ReviewPanel(deps);
    ReviewPanel.current = panel;
    panel.app.reveal();
    await panel.open(target);
    return panel;
  }

  /** Re-reads the shown question (after a decision made elsewhere: the explorer, a CodeLens). */
  static refreshIfOpen(): void {
    void ReviewPanel.current?.reload();
  }

  private constructor(private readonly deps: ReviewDeps) {
    const created = performance.now();
    let readyOnce = false;
    this.app = new WebviewApp(deps.extensionUri, { viewType: "selfTraining.review", title: "Rationale Review", app: "review", check: checkReviewMessage }, deps.log);
    this.disposables.push(
      this.app,
      this.app.onReady(() => {
        if (!readyOnce) deps.log.info(`review: page ready ${(performance.now() - created).toFixed(0)} ms after the panel was created`);
        readyOnce = true;
        void this.postState();
      }),
      this.app.onMessage((m) => void this.handle(m).catch((e: unknown) => this.fail(e))),
      this.app.onDidDispose(() => this.dispose()),
      vscode.workspace.onDidSaveTextDocument((doc) => void this.onDraftSaved(doc).catch((e: unknown) => this.fail(e))),
    );
  }

  dispose(): void {
    if (ReviewPanel.current === this) ReviewPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
  }

  private get selftrain(): string {
    return selftrainDir(this.deps.workspace.fsPath);
  }

  private reviews(): ReviewLog {
    return new ReviewLog(this.selftrain);
  }

  private dataFiles(): string[] {
    const ws = this.deps.workspace.fsPath;
    // Read leniently: a typo elsewhere in config.json (the explorer shows it in place) must not stop the review,
    // which reads the data files only to show a question's gold rationale.
    const c = readConfigProblems(configPath(ws)).config;
    if (!c) return [];
    const at = (p: string): string => (isAbsolute(p) ? p : resolve(ws, p));
    return [c.data.train, c.data.test].filter((f) => f.length > 0).map(at);
  }

  private async runs(): Promise<ReviewRunChoice[]> {
    const out: ReviewRunChoice[] = [];
    for (const id of RunStore.list(this.selftrain)) {
      const store = await RunStore.open(this.selftrain, id);
      const rounds = store.manifest.rounds.map((r) => r.round).filter((r) => r > 0 && SAMPLE_FILES.some(([f]) => existsSync(store.path(r, f))));
      out.push({ runId: id, mode: store.manifest.mode, rounds });
    }
    return out;
  }

  /** Opens a round (the newest with samples unless given) at a question (the first of the filter unless given). */
  private async open(target?: ReviewTarget): Promise<void> {
    const gen = ++this.generation;
    const started = performance.now();
    const runs = await this.runs();
    let runId = target?.runId;
    let round = target?.round;
    if (runId === undefined || round === undefined || !runs.some((r) => r.runId === runId && r.rounds.includes(round!))) {
      const withRounds = runs.filter((r) => r.rounds.length > 0);
      const newest = withRounds[withRounds.length - 1];
      if (!newest) {
        this.place = null;
        this.question = null;
        void this.postState(runs);
        return;
      }
      runId = newest.runId;
      round = Math.max(...newest.rounds);
    }
    const store = await RunStore.open(this.selftrain, runId);
    this.place = { store, round };
    this.focusHash = target?.hash;
    if (target?.questionId) this.filter = "all";
    let questionId = target?.questionId;
    let preloaded: { file: string; records: SampleRecord[] } | undefined;
    let widened: string | null = null;
    if (!questionId) {
      // The first question of the filter, read from the head of the file: no need to wait for the whole index.
      let found = await this.firstOfFilter(store, round, this.filter);
      if (!found && !target?.keepFilter && this.filter !== "all") {
        const empty = this.filter;
        this.filter = "all";
        found = await this.firstOfFilter(store, round, this.filter);
        if (found) widened = `No questions in "${empty}" in round ${round}: showing all questions.`;
      }
      if (found) {
        questionId = found.records[0]!.questionId;
        preloaded = found;
      }
    }
    this.question = questionId ? await buildReviewQuestion({ store, round, reviews: this.reviews(), dataFiles: this.dataFiles() }, questionId, preloaded) : null;
    if (gen !== this.generation) return;
    this.queue = { filter: this.filter, position: null, total: null, counts: {} };
    void this.postState(runs);
    if (widened) this.post({ type: "notice", level: "info", text: widened });
    this.deps.log.info(`review: run ${runId} round ${round}${questionId ? ` question ${questionId}` : ""} read in ${(performance.now() - started).toFixed(0)} ms`);
    void this.updateQueue(gen);
  }

  private async firstOfFilter(store: RunStore, round: number, filter: ReviewFilter): Promise<{ file: string; records: SampleRecord[] } | null> {
    const file = existsSync(store.path(round, "samples-dpo.jsonl")) ? "samples-dpo.jsonl" : "samples-sft.jsonl";
    const log = this.reviews();
    const effective = log.effective();
    const verdicts = log.sampleVerdicts(effective);
    const { hashes: touchedHashes, questions: touchedQuestions } = log.touched(effective);
    const touched = (r: SampleRecord): boolean => touchedHashes.has(r.hash) || touchedQuestions.has(r.questionId);
    const records = await firstQuestionGroup<SampleRecord>(store.path(round, file), (g) => recordsInFilter(g, filter, verdicts, touched));
    return records ? { file, records } : null;
  }

  /** Builds the filter's queue from the round index and posts where the shown question sits in it. */
  private async updateQueue(gen: number): Promise<void> {
    if (!this.place) return;
    const index = await this.deps.roundIndex(this.place.store.manifest.runId, this.place.round);
    if (gen !== this.generation) return;
    const list = reviewQueue(index, this.filter);
    const at = this.question ? list.findIndex((q) => q.questionId === this.question!.questionId) : -1;
    this.queue = { filter: this.filter, position: at >= 0 ? at : null, total: list.length, counts: filterCounts(index) };
    this.post({ type: "queue", queue: this.queue });
  }

  private async reload(): Promise<void> {
    if (!this.place || !this.question) return;
    const gen = ++this.generation;
    this.question = await buildReviewQuestion({ store: this.place.store, round: this.place.round, reviews: this.reviews(), dataFiles: this.dataFiles() }, this.question.questionId);
    if (gen !== this.generation) return;
    this.postState();
    void this.updateQueue(gen);
  }

  private async postState(runs?: ReviewRunChoice[]): Promise<void> {
    this.post({
      type: "state", runs: runs ?? (await this.runs()), runId: this.place?.store.manifest.runId ?? null, round: this.place?.round ?? null,
      queue: this.queue, question: this.question,
      ...(!this.place ? { empty: "No rounds to review yet: a round samples rationales for every training question, and they are reviewed here." } : {}),
      ...(this.place && !this.question ? { empty: `No questions in "${this.filter}" in this round.` } : {}),
      ...(this.focusHash ? { focusHash: this.focusHash } : {}),
    });
    this.focusHash = undefined;
  }

  private post(m: ReviewHostMessage): void {
    this.app.post(m);
  }

  private fail(e: unknown): void {
    const text = e instanceof Error ? e.message : String(e);
    this.deps.log.error(`review: ${text}`);
    this.post({ type: "notice", level: "error", text });
  }

  private decide(decision: ReviewDecision, note?: string): void {
    this.reviews().append(decision, note);
    this.deps.onDecided();
  }

  private async handle(m: ReviewWebviewMessage): Promise<void> {
    switch (m.type) {
      case "ready":
        return;
      case "log":
        this.deps.log[m.level === "info" ? "info" : m.level === "warn" ? "warn" : "error"](`review webview: ${m.text}`);
        return;
      case "selectRound":
        return this.open({ runId: m.runId, round: m.round });
      case "setFilter":
        this.filter = m.filter;
        if (this.place) return this.open({ runId: this.place.store.manifest.runId, round: this.place.round, keepFilter: true });
        return;
      case "navigate":
        return this.navigate(m.to);
      case "openRecord":
        if (this.place) await openSampleRecord(this.place.store, this.place.round, m.hash);
        return;
      case "startRound":
        await vscode.commands.executeCommand("selfTraining.startRound");
        return;
    }
    const q = this.question;
    if (!q || !this.place) return;
    switch (m.type) {
      case "mark":
        this.decide({ kind: "mark", verdict: m.verdict, hash: m.hash });
        break;
      case "exclude":
        this.decide(m.excluded ? { kind: "exclude-sample", hash: m.hash } : { kind: "include-sample", hash: m.hash });
        break;
      case "forcePair":
        this.decide({ kind: "force-pair", questionId: q.questionId, chosenHash: m.chosenHash, rejectedHash: m.rejectedHash });
        break;
      case "swapPair":
        // The same two rationales the other way round: the review log's latest decision on a pair wins.
        this.decide({ kind: "force-pair", questionId: q.questionId, chosenHash: m.rejectedHash, rejectedHash: m.chosenHash });
        break;
      case "excludePair":
        this.decide(m.excluded
          ? { kind: "exclude-pair", chosenHash: m.chosenHash, rejectedHash: m.rejectedHash }
          : { kind: "force-pair", questionId: q.questionId, chosenHash: m.chosenHash, rejectedHash: m.rejectedHash });
        break;
      case "note": {
        const text = await vscode.window.showInputBox({ title: "Note on this rationale", prompt: "Saved in .selftrain/reviews.jsonl", ignoreFocusOut: true });
        if (!text) return;
        this.decide({ kind: "note", hash: m.hash, text });
        break;
      }
      case "undo": {
        const last = q.decisions[q.decisions.length - 1];
        if (!last) return this.post({ type: "notice", level: "info", text: "Nothing to undo on this question." });
        this.decide({ kind: "undo", decisionId: last.id });
        this.post({ type: "notice", level: "info", text: `Undone: ${last.summary}.` });
        break;
      }
      case "confirmRationale":
        this.decide({ kind: "confirm-rationale", hash: m.hash });
        this.post({ type: "notice", level: "info", text: "Confirmed: the next round trains on your rationale as written." });
        break;
      case "editRationale":
        return this.editRationale(q, m.fromHash);
    }
    await this.reload();
  }

  private async navigate(to: "next" | "prev" | "first"): Promise<void> {
    if (!this.place) return;
    const gen = ++this.generation;
    const index = await this.deps.roundIndex(this.place.store.manifest.runId, this.place.round);
    const list = reviewQueue(index, this.filter);
    if (list.length === 0) return this.post({ type: "notice", level: "info", text: `No questions in "${this.filter}".` });
    const next = neighbourInQueue(index, this.filter, this.question?.questionId ?? null, to);
    if (next < 0 || next >= list.length) return this.post({ type: "notice", level: "info", text: next < 0 ? "This is the first question." : "This is the last question of the queue." });
    this.question = await buildReviewQuestion({ store: this.place.store, round: this.place.round, reviews: this.reviews(), dataFiles: this.dataFiles() }, list[next]!.questionId);
    if (gen !== this.generation) return;
    this.queue = { filter: this.filter, position: next, total: list.length, counts: filterCounts(index) };
    await this.postState();
  }

  /** A hand-written rationale is edited in a real editor tab; saving it records it as a positive. */
  private async editRationale(q: ReviewQuestion, fromHash: string | null): Promise<void> {
    const spansText = (spans: ReadonlyArray<{ text: string }>): string => spans.map((s) => s.text).join("");
    const base = fromHash === null ? null
      : q.samples.find((s) => s.hash === fromHash) ?? (q.gold?.hash === fromHash ? q.gold : q.written.find((w) => w.hash === fromHash)) ?? null;
    const start = base ? spansText(base.spans) : q.gold ? spansText(q.gold.spans) : `\n#### ${q.goldAnswer}`;
    const dir = join(this.selftrain, "drafts");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${q.questionId.replace(/[^\w.-]+/g, "_")}.txt`);
    writeFileSync(file, start.endsWith("\n") ? start : start + "\n");
    this.drafts.set(file, { questionId: q.questionId, question: q.question, gold: q.goldAnswer, runId: q.runId, round: q.round });
    const doc = await vscode.workspace.openTextDocument(file);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: false });
    void vscode.window.showInformationMessage(`Write the rationale for Q ${q.questionId}, ending in "#### ${q.goldAnswer}", and save: it is recorded as a hand-written positive.`);
  }

  private async onDraftSaved(doc: vscode.TextDocument): Promise<void> {
    const draft = this.drafts.get(doc.uri.fsPath);
    if (!draft) return;
    const rationale = doc.getText().trim();
    const final = extractFinalAnswer(rationale);
    if (!final) {
      void vscode.window.showWarningMessage(`Not recorded: the rationale needs a final answer line "#### ${draft.gold}".`);
      return;
    }
    if (!answersMatch(final.value, draft.gold)) {
      const go = await vscode.window.showWarningMessage(`Its final answer ${final.text} differs from the gold answer ${draft.gold}. Record it as a positive anyway?`, { modal: true }, "Record");
      if (go !== "Record") return;
    }
    // The arithmetic check, as for sampled rationales. A questioned rationale is recorded (nothing the person wrote
    // is lost) but held: no positive until they confirm it as written, or save a corrected one.
    const problems = arithmeticProblems(rationaleSpans(rationale, draft.gold));
    const hash = contentHash(draft.question, rationale);
    const log = this.reviews();
    // A corrected save of the same draft replaces the held version it corrects.
    const superseded = draft.heldId && hash !== draft.heldHash && log.addedRationales().some((a) => a.id === draft.heldId && !a.confirmed) ? draft.heldId : null;
    const entry = log.append({ kind: "add-rationale", questionId: draft.questionId, question: draft.question, rationale, hash, ...(problems.length ? { unconfirmed: problems } : {}) });
    if (superseded) log.append({ kind: "undo", decisionId: superseded }, "replaced by a corrected save of the same draft");
    draft.heldId = problems.length ? entry.id : undefined;
    draft.heldHash = problems.length ? hash : undefined;
    this.deps.onDecided();
    if (this.question?.questionId === draft.questionId) await this.reload();
    if (problems.length === 0) {
      void vscode.window.showInformationMessage(`Recorded your rationale for Q ${draft.questionId}; the next round trains on it.`);
      return;
    }
    const action = await vscode.window.showWarningMessage(
      `Held, not used for training: the arithmetic check found ${problems.length === 1 ? "a problem" : `${problems.length} problems`} in your rationale for Q ${draft.questionId}: ${problems.join("; ")}. Fix it and save again, or confirm it as written.`,
      "Confirm as Written",
    );
    if (action !== "Confirm as Written") return;
    log.append({ kind: "confirm-rationale", hash });
    draft.heldId = undefined;
    this.deps.onDecided();
    void vscode.window.showInformationMessage(`Confirmed: the next round trains on your rationale for Q ${draft.questionId} as written.`);
    if (this.question?.questionId === draft.questionId) await this.reload();
  }
}
