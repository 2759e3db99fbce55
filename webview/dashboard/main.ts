/**
 * The metrics dashboard webview. The host owns the state and posts it whole (on ready and after each finished
 * stage), then live steps as they happen; this page caches it, draws it, and asks the host for what only the
 * host can do (reveal a round in the explorer, save a PNG, read the files again, show another run).
 */
import "./style.css";
import "@vscode-elements/elements/dist/vscode-button/index.js";
import "@vscode-elements/elements/dist/vscode-single-select/index.js";
import "@vscode-elements/elements/dist/vscode-option/index.js";
import { connect, h } from "../common/bridge";
import { isDashboardFromHost } from "../../src/shared/dashboardProtocol";
import type { DashboardFromHost, DashboardState, DashboardToHost, MetricWarning, RoundRow, RunMetrics, RunSummary, Series, StageSteps } from "../../src/shared/dashboardProtocol";
import type { StepMetric, TrainStage } from "../../src/shared/metricRecord";
import { ChartCard, readPalette, type CardSpec, type SeriesSpec, type XY } from "./charts";
import { RoundsTable, type Sort } from "./roundsTable";
import { count, countDelta, MODE_LABEL, percent, pointsDelta } from "./format";
import { stageLabel } from "../../src/shared/runTypes";
import { formatEngine } from "../../src/shared/format";

interface UiState {
  sort: Sort;
  /** The round whose steps are drawn; null follows the newest round with steps (live rounds included). */
  stepRound: number | null;
}

type SelectElement = HTMLElement & { value: string };

/** A step chart: which stage it draws and which metric feeds each of its curves, in order. */
interface StepCard {
  card: ChartCard;
  stage: (round: number) => TrainStage;
  metrics: StepMetric[];
  series: (round: number) => SeriesSpec[];
  /** What it draws now, so live points are appended only to the curves they belong to. */
  shown: { round: number; stage: TrainStage } | null;
}

interface View {
  title: HTMLElement;
  meta: HTMLElement;
  pickerWrap: HTMLElement;
  picker: SelectElement;
  status: HTMLElement;
  tiles: HTMLElement;
  warnings: HTMLUListElement;
  empty: HTMLElement;
  content: HTMLElement;
  accuracy: ChartCard;
  passAtK: ChartCard;
  labels: ChartCard;
  stepPicker: SelectElement;
  stepCards: StepCard[];
  table: RoundsTable;
}

const EMPTY_TEXT = "No metrics yet: start a self-training round.";
const LIVE_CAP = 2000;

const ui: UiState = { sort: { key: "round", descending: false }, stepRound: null };
let state: DashboardState | null = null;
let view: View | null = null;
let palette = readPalette();

const bridge = connect<DashboardToHost, unknown>((m) => {
  if (isDashboardFromHost(m)) receive(m);
});
Object.assign(ui, bridge.savedState<UiState>() ?? {});

function saveUi(): void {
  bridge.saveState(ui);
}

function receive(m: DashboardFromHost): void {
  switch (m.type) {
    case "state":
      state = m.state;
      render();
      return;
    case "steps":
      applySteps(m);
      return;
    case "status":
      if (!state) return;
      state.status = m.status;
      if (view) renderStatus(view, state);
      return;
  }
}

function root(): HTMLElement {
  const app = document.getElementById("app");
  if (!app) throw new Error("the page has no #app element");
  return app;
}

/** What to do next on an empty dashboard: the round whose metrics it would show. */
function startButton(): HTMLElement {
  const b = h("vscode-button", { icon: "play", "data-action": "start-round", title: "Start Self-Training Round" }, "Start a self-training round");
  b.addEventListener("click", () => bridge.post({ type: "startRound" }));
  return h("p", {}, b);
}

function render(): void {
  const app = root();
  app.setAttribute("aria-busy", "false");
  if (!state) return;
  if (state.runs.length === 0 || !state.selected) {
    view = null;
    app.replaceChildren(h("p", { class: "empty" }, EMPTY_TEXT), startButton(), problemsList(state.problems));
    return;
  }
  view ??= buildView(app);
  const run = state.selected;
  renderHeader(view, state, run);
  renderStatus(view, state);
  renderTiles(view, run);
  renderWarnings(view, run.warnings, state.problems);
  const hasData = run.rounds.length > 0 || run.steps.length > 0;
  view.empty.hidden = hasData;
  view.content.hidden = !hasData;
  if (!hasData) return;
  renderRoundCharts(view, state, run);
  renderStepPicker(view, run);
  renderStepCharts(view, run);
  view.table.update(run.rounds);
}

function problemsList(problems: string[]): HTMLElement {
  return h("ul", { class: "warnings", "aria-label": "Problems" }, ...problems.map((p) => warningItem("error", p)));
}

function warningItem(severity: MetricWarning["severity"], text: string): HTMLLIElement {
  return h("li", { class: `warning ${severity}`, "data-testid": "warning" }, h("span", { class: `codicon ${severity === "error" ? "codicon-error" : "codicon-warning"}`, "aria-hidden": "true" }), h("span", {}, text));
}

function select(label: string): SelectElement {
  return h("vscode-single-select", { "aria-label": label, title: label }) as SelectElement;
}

function option(value: string, label: string): HTMLElement {
  return h("vscode-option", { value }, label);
}

function buildView(app: HTMLElement): View {
  const onSave = (card: ChartCard): void => {
    if (!state?.selected) return;
    try {
      bridge.post({ type: "savePng", runId: state.selected.runId, chart: card.spec.name, dataUrl: card.toPng() });
    } catch (e) {
      bridge.post({ type: "log", level: "error", text: `could not make a PNG of ${card.spec.name}: ${e instanceof Error ? e.message : String(e)}` });
    }
  };
  const card = (spec: CardSpec): ChartCard => new ChartCard(spec, palette, onSave);

  const picker = select("Run shown");
  picker.addEventListener("change", () => {
    if (picker.value && picker.value !== state?.selected?.runId) bridge.post({ type: "selectRun", runId: picker.value });
  });
  const refresh = h("vscode-button", { secondary: true, icon: "refresh", title: "Read the metrics files again" }, "Refresh");
  refresh.addEventListener("click", () => bridge.post({ type: "refresh" }));
  const stepPicker = select("Round whose steps are drawn");
  stepPicker.addEventListener("change", () => {
    ui.stepRound = stepPicker.value === "latest" ? null : Number(stepPicker.value);
    saveUi();
    if (view && state?.selected) renderStepCharts(view, state.selected);
  });

  const stageOf = (s: TrainStage) => (): TrainStage => s;
  const stepCards: StepCard[] = [
    {
      card: card({ name: "dpo-loss", title: "DPO loss and reward accuracy", kind: "step", x: "DPO step", y: { title: "Loss" }, y1: { title: "Reward accuracy", min: 0, max: 1 }, description: "the DPO loss and rewards/accuracies per step." }),
      stage: stageOf("dpo"),
      metrics: ["loss", "rewards/accuracies"],
      series: () => [{ label: "DPO loss", role: "blue" }, { label: "rewards/accuracies", role: "green", right: true }],
      shown: null,
    },
    {
      card: card({ name: "rewards", title: "Rewards: chosen, rejected, margins", kind: "step", x: "DPO step", y: { title: "Reward (β × log-ratio)" }, description: "rewards/chosen, rewards/rejected and rewards/margins per DPO step." }),
      stage: stageOf("dpo"),
      metrics: ["rewards/chosen", "rewards/rejected", "rewards/margins"],
      series: () => [{ label: "rewards/chosen", role: "green" }, { label: "rewards/rejected", role: "red" }, { label: "rewards/margins", role: "blue", dashed: true }],
      shown: null,
    },
    {
      card: card({ name: "sft-loss", title: "SFT loss and learning rate", kind: "step", x: "Step", y: { title: "Loss" }, y1: { title: "Learning rate", min: 0 }, description: "the SFT (or warm-up) loss and the learning rate per step." }),
      stage: (round) => (round === 0 ? "warmup" : "sft"),
      metrics: ["loss", "learning_rate"],
      series: (round) => [{ label: round === 0 ? "warm-up loss" : "SFT loss", role: "purple" }, { label: "learning rate", role: "yellow", right: true, dashed: true }],
      shown: null,
    },
  ];

  const v: View = {
    title: h("h1", {}),
    meta: h("span", { class: "meta" }),
    pickerWrap: h("label", { class: "picker" }),
    picker,
    status: h("span", { class: "status", role: "status" }),
    tiles: h("section", { class: "tiles", "aria-label": "Latest round" }),
    warnings: h("ul", { class: "warnings", "aria-label": "Warnings", "aria-live": "polite" }),
    empty: h("p", { class: "empty", hidden: true }, EMPTY_TEXT),
    content: h("div", { class: "content" }),
    accuracy: card({ name: "accuracy", title: "Accuracy per round", kind: "round", x: "Round", y: { title: "Accuracy", min: 0, percent: true }, description: "greedy accuracy on the test and dev splits after each round." }),
    passAtK: card({ name: "pass-at-k", title: "pass@k per round", kind: "round", x: "Round", y: { title: "pass@k", min: 0, percent: true }, description: "the share of questions with a right answer among k samples, per round." }),
    labels: card({ name: "pseudo-labels", title: "Pseudo-labels and distinct rationales per question", kind: "round", x: "Round", y: { title: "Pseudo-labels", min: 0 }, y1: { title: "Distinct / question", min: 0 }, description: "pseudo-labels kept per round, and distinct rationales per question." }),
    stepPicker,
    stepCards,
    table: new RoundsTable(ui.sort, (s) => {
      ui.sort = s;
      saveUi();
    }, (round) => {
      if (state?.selected) bridge.post({ type: "revealRound", runId: state.selected.runId, round });
    }),
  };
  v.pickerWrap.append(h("span", { class: "picker-label" }, "Run"), picker);
  v.content.append(
    h("section", { class: "chart-grid", "aria-label": "Charts per round" }, v.accuracy.element, v.passAtK.element, v.labels.element),
    h("section", { class: "steps", "aria-labelledby": "steps-title" },
      h("div", { class: "section-head" }, h("h2", { id: "steps-title" }, "Per step"), h("label", { class: "picker" }, h("span", { class: "picker-label" }, "Round"), stepPicker)),
      h("div", { class: "chart-grid" }, ...stepCards.map((s) => s.card.element)),
    ),
    h("section", { class: "table-section", "aria-labelledby": "rounds-title" },
      h("div", { class: "section-head" }, h("h2", { id: "rounds-title" }, "Rounds"), h("span", { id: "rounds-hint", class: "hint" }, "Select a row to reveal that round in the Dataset Explorer.")),
      v.table.element,
    ),
  );
  app.replaceChildren(
    h("header", { class: "header" },
      h("div", { class: "heading" }, v.title, v.meta),
      h("div", { class: "actions" }, v.status, v.pickerWrap, refresh),
    ),
    v.tiles,
    v.warnings,
    v.empty,
    v.content,
  );
  // VS Code swaps the body's theme class in place: recolour the canvases, which cannot follow CSS by themselves.
  new MutationObserver(() => {
    palette = readPalette();
    for (const c of allCards(v)) c.setPalette(palette);
  }).observe(document.body, { attributes: true, attributeFilter: ["class", "data-vscode-theme-kind"] });
  return v;
}

function allCards(v: View): ChartCard[] {
  return [v.accuracy, v.passAtK, v.labels, ...v.stepCards.map((s) => s.card)];
}

function renderHeader(v: View, st: DashboardState, run: RunMetrics): void {
  v.title.textContent = `Run ${run.runId}`;
  const engine = run.engine ? ` · engine ${formatEngine(run.engine, run.device)}` : "";
  // "auto" that fell back to the slower engine says so, and why, where the engine is named.
  const fallback = run.engineFallback ? ` · ⚠ auto fell back to it: ${run.engineFallback}` : "";
  v.meta.textContent = `${MODE_LABEL[run.mode] ?? run.mode}${engine}${fallback}`;
  v.pickerWrap.hidden = st.runs.length < 2;
  const ids = st.runs.map((r) => r.runId).join("\n");
  if (v.picker.dataset["ids"] !== ids) {
    v.picker.dataset["ids"] = ids;
    v.picker.replaceChildren(...[...st.runs].reverse().map((r) => option(r.runId, `${r.runId} · ${MODE_LABEL[r.mode] ?? r.mode}`)));
  }
  v.picker.value = run.runId;
}

function renderStatus(v: View, st: DashboardState): void {
  const s = st.status;
  v.status.hidden = !s.running;
  if (!s.running) {
    v.status.replaceChildren();
    return;
  }
  const where = s.round !== null && s.stage !== null ? `Round ${s.round} · ${stageLabel(s.stage)}${s.step !== null ? ` step ${s.step}${s.totalSteps ? `/${s.totalSteps}` : ""}` : ""}` : "A self-training job is running";
  const other = s.runId !== null && s.runId !== st.selected?.runId ? ` (run ${s.runId})` : "";
  v.status.replaceChildren(h("span", { class: "codicon codicon-loading codicon-modifier-spin", "aria-hidden": "true" }), h("span", {}, `${where}${other}`));
}

function tile(label: string, value: string, unit: string, delta?: { text: string; good: boolean | null }): HTMLElement {
  return h("div", { class: "tile" },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value, value === "—" || unit === "" ? null : h("span", { class: "tile-unit" }, unit), delta ? h("span", { class: `delta ${delta.good === null ? "" : delta.good ? "up" : "down"}` }, delta.text) : null),
  );
}

/** The last two rows where `f` has a value: the tile shows the newest and its change from the one before. */
function lastTwo(rows: RoundRow[], f: (r: RoundRow) => number | null): [number | null, number | null] {
  const values = rows.map(f).filter((v): v is number => v !== null);
  return [values[values.length - 1] ?? null, values[values.length - 2] ?? null];
}

function renderTiles(v: View, run: RunMetrics): void {
  const rows = [...run.rounds].sort((a, b) => a.round - b.round);
  const [acc, accBefore] = lastTwo(rows, (r) => r.testAccuracy);
  const [pass] = lastTwo(rows, (r) => r.testPassAtK);
  const k = [...rows].reverse().find((r) => r.k !== null)?.k ?? null;
  const [pairs, pairsBefore] = lastTwo(rows, (r) => r.pairs);
  const [labels, labelsBefore] = lastTwo(rows, (r) => r.pseudoLabels);
  const [speed] = lastTwo(rows, (r) => r.tokensPerSecond);
  v.tiles.replaceChildren(
    tile("test accuracy", percent(acc), "%", acc !== null && accBefore !== null ? { text: `${pointsDelta(acc, accBefore)} pts`, good: acc === accBefore ? null : acc > accBefore } : undefined),
    tile(`test pass@${k ?? "k"}`, percent(pass), "%"),
    tile("preference pairs", count(pairs), "pairs", pairs !== null && pairsBefore !== null ? { text: `(${countDelta(pairs, pairsBefore)})`, good: null } : undefined),
    tile("pseudo-labels", count(labels), "rationales", labels !== null && labelsBefore !== null ? { text: `(${countDelta(labels, labelsBefore)})`, good: null } : undefined),
    tile("training and sampling speed", count(speed === null ? null : Math.round(speed)), "tokens/s"),
  );
}

function renderWarnings(v: View, warnings: MetricWarning[], problems: string[]): void {
  v.warnings.hidden = warnings.length === 0 && problems.length === 0;
  v.warnings.replaceChildren(...problems.map((p) => warningItem("error", p)), ...warnings.map((w) => warningItem(w.severity, w.text)));
}

/** The newest run of the other mode, when it has evaluated rounds: the comparison DPO-ST vs ST. */
function comparisonRun(st: DashboardState, run: RunMetrics): RunSummary | null {
  return [...st.runs].reverse().find((r) => r.mode !== run.mode && r.rounds.some((x) => x.testAccuracy !== null)) ?? null;
}

function renderRoundCharts(v: View, st: DashboardState, run: RunMetrics): void {
  const other = comparisonRun(st, run);
  const rounds = [...new Set([...run.rounds, ...(other?.rounds ?? [])].map((r) => r.round))].sort((a, b) => a - b);
  const labels = rounds.map(String);
  const column = (rows: RoundRow[], f: (r: RoundRow) => number | null, scale = 1): Array<number | null> => rounds.map((n) => {
    const row = rows.find((r) => r.round === n);
    const value = row ? f(row) : null;
    return value === null ? null : value * scale;
  });
  const mode = MODE_LABEL[run.mode] ?? run.mode;
  const otherMode = other ? MODE_LABEL[other.mode] ?? other.mode : "";

  v.accuracy.setTitle(other ? `Accuracy per round: ${mode} vs ${otherMode}` : "Accuracy per round");
  const accSpecs: SeriesSpec[] = [{ label: `${mode} test`, role: "blue" }, { label: `${mode} dev`, role: "blue", dashed: true }];
  const accData = [column(run.rounds, (r) => r.testAccuracy, 100), column(run.rounds, (r) => r.devAccuracy, 100)];
  if (other) {
    accSpecs.push({ label: `${otherMode} test (run ${other.runId})`, role: "orange" }, { label: `${otherMode} dev (run ${other.runId})`, role: "orange", dashed: true });
    accData.push(column(other.rounds, (r) => r.testAccuracy, 100), column(other.rounds, (r) => r.devAccuracy, 100));
  }
  v.accuracy.setSeries(accSpecs, accData, labels);
  v.accuracy.setNote(run.rounds.some((r) => r.testAccuracy !== null || r.devAccuracy !== null) ? null : "No round of this run has been evaluated yet.");

  const k = [...run.rounds].reverse().find((r) => r.k !== null)?.k ?? null;
  v.passAtK.setTitle(`pass@${k ?? "k"} per round`);
  const passSpecs: SeriesSpec[] = [{ label: `${mode} test`, role: "green" }, { label: `${mode} dev`, role: "green", dashed: true }];
  const passData = [column(run.rounds, (r) => r.testPassAtK, 100), column(run.rounds, (r) => r.devPassAtK, 100)];
  if (other) {
    passSpecs.push({ label: `${otherMode} test (run ${other.runId})`, role: "orange" });
    passData.push(column(other.rounds, (r) => r.testPassAtK, 100));
  }
  v.passAtK.setSeries(passSpecs, passData, labels);
  v.passAtK.setNote(run.rounds.some((r) => r.testPassAtK !== null || r.devPassAtK !== null) ? null : "No pass@k yet: it needs an evaluation with eval.passSamples > 0.");

  const own = run.rounds.map((r) => r.round).sort((a, b) => a - b);
  const ownColumn = (f: (r: RoundRow) => number | null): Array<number | null> => own.map((n) => f(run.rounds.find((r) => r.round === n)!));
  v.labels.setSeries(
    [{ label: "pseudo-labels", role: "purple", bar: true }, { label: "distinct rationales / question", role: "yellow", right: true }],
    [ownColumn((r) => r.pseudoLabels), ownColumn((r) => r.distinctPerQuestion)],
    own.map(String),
  );
  v.labels.setNote(run.rounds.some((r) => r.pseudoLabels !== null) ? null : "No pseudo-labels yet: they are selected in rounds 1 and later.");
}

function stepRounds(run: RunMetrics): number[] {
  return [...new Set(run.steps.map((s) => s.round))].sort((a, b) => a - b);
}

/** The round a step chart draws: the one picked, else the newest round that has the chart's stage (a round without pairs has no DPO steps, and its SFT curve should not blank the DPO charts). */
function shownStepRound(run: RunMetrics, sc: StepCard): number | null {
  const rounds = stepRounds(run);
  if (ui.stepRound !== null && rounds.includes(ui.stepRound)) return ui.stepRound;
  const withStage = rounds.filter((r) => findSteps(run, r, sc.stage(r)) !== undefined);
  return withStage[withStage.length - 1] ?? rounds[rounds.length - 1] ?? null;
}

function renderStepPicker(v: View, run: RunMetrics): void {
  const rounds = stepRounds(run);
  const key = `${run.runId}:${rounds.join(",")}`;
  if (v.stepPicker.dataset["rounds"] !== key) {
    v.stepPicker.dataset["rounds"] = key;
    v.stepPicker.replaceChildren(
      option("latest", "Newest"),
      ...[...rounds].reverse().map((r) => option(String(r), `Round ${r}`)),
    );
  }
  v.stepPicker.value = ui.stepRound !== null && rounds.includes(ui.stepRound) ? String(ui.stepRound) : "latest";
}

function findSteps(run: RunMetrics, round: number, stage: TrainStage): StageSteps | undefined {
  return run.steps.find((s) => s.round === round && s.stage === stage);
}

function xy(s: Series | undefined): XY[] {
  return s ? s.x.map((x, i) => ({ x, y: s.y[i]! })) : [];
}

function missingStepsNote(run: RunMetrics, round: number, stage: TrainStage): string {
  if (stage === "dpo" && run.mode === "st") return "Plain self-training has no DPO step.";
  if (stage === "dpo" && round === 0) return "Round 0 is the warm-up: it has no DPO step.";
  if (stage === "dpo" && run.rounds.find((r) => r.round === round)?.pairs === 0) return `Round ${round} built no preference pairs, so it has no DPO steps.`;
  return `No ${stageLabel(stage)} steps recorded for round ${round} yet.`;
}

function renderStepCharts(v: View, run: RunMetrics): void {
  for (const sc of v.stepCards) {
    const round = shownStepRound(run, sc);
    const title = sc.card.spec.title;
    if (round === null) {
      sc.card.setTitle(title);
      sc.card.setSeries(sc.series(0), []);
      sc.card.setNote("No training steps recorded yet.");
      sc.shown = null;
      continue;
    }
    const stage = sc.stage(round);
    const steps = findSteps(run, round, stage);
    sc.card.setTitle(`${stage === "warmup" ? title.replace("SFT", "Warm-up SFT") : title} · round ${round}`);
    sc.card.setSeries(sc.series(round), sc.metrics.map((m) => xy(steps?.series[m])));
    sc.card.setNote(steps ? null : missingStepsNote(run, round, stage));
    sc.shown = { round, stage };
  }
}

function thin(s: Series): void {
  if (s.x.length <= LIVE_CAP) return;
  const keep = (_: number, i: number): boolean => i === 0 || i === s.x.length - 1 || i % 2 === 0;
  s.x = s.x.filter(keep);
  s.y = s.y.filter(keep);
}

/** Live steps: into the cache, and onto the charts that show their stage, without rebuilding anything else. */
function applySteps(m: Extract<DashboardFromHost, { type: "steps" }>): void {
  const run = state?.selected;
  if (!state || !run || !view || run.runId !== m.runId) return;
  run.warnings = m.warnings;
  const summary = state.runs.find((r) => r.runId === run.runId);
  if (summary) summary.warnings = m.warnings;

  let steps = findSteps(run, m.round, m.stage);
  const isNew = !steps;
  if (!steps) {
    steps = { round: m.round, stage: m.stage, totalSteps: m.totalSteps, recorded: 0, lastStep: 0, series: {}, nonFinite: {} };
    run.steps.push(steps);
    run.steps.sort((a, b) => a.round - b.round);
  }
  if (m.reset) Object.assign(steps, { recorded: 0, lastStep: 0, series: {}, nonFinite: {} });
  for (const p of m.points) {
    for (const [k, value] of Object.entries(p.values) as Array<[StepMetric, number]>) {
      const s = (steps.series[k] ??= { x: [], y: [] });
      s.x.push(p.step);
      s.y.push(value);
      thin(s);
    }
    steps.recorded++;
    steps.lastStep = Math.max(steps.lastStep, p.step);
  }
  steps.totalSteps = m.totalSteps;

  renderWarnings(view, run.warnings, state.problems);
  view.empty.hidden = true;
  if (view.content.hidden) {
    render();
    return;
  }
  if (isNew) {
    // A stage (maybe a round) the charts have not seen: the picker and, when following the newest, the charts change.
    renderStepPicker(view, run);
    renderStepCharts(view, run);
    return;
  }
  for (const sc of view.stepCards) {
    if (sc.shown?.round !== m.round || sc.shown.stage !== m.stage) continue;
    if (m.reset) {
      renderStepCharts(view, run);
      return;
    }
    sc.metrics.forEach((metricName, i) => sc.card.append(i, m.points.flatMap((p) => (p.values[metricName] === undefined ? [] : [{ x: p.step, y: p.values[metricName]! }]))));
    sc.card.setNote(null);
  }
}
