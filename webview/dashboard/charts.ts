/**
 * Chart cards: a heading, a "Save PNG" button and a Chart.js canvas. Only the controllers, elements, scales and
 * plugins used here are registered, which keeps the bundle to a part of Chart.js. Colours come from the VS Code
 * theme (CSS variables read with getComputedStyle, since a canvas cannot use CSS) and follow theme changes.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from "chart.js";
import type { ActiveElement, ChartConfiguration, ChartDataset, TooltipItem } from "chart.js";
import { h } from "../common/bridge";
import { metric } from "./format";

Chart.register(LineController, BarController, LineElement, BarElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend);

export type ColorRole = "blue" | "red" | "green" | "yellow" | "orange" | "purple" | "foreground";

export interface Palette extends Record<ColorRole, string> {
  grid: string;
  background: string;
  hoverBackground: string;
  hoverForeground: string;
  hoverBorder: string;
  fontFamily: string;
  fontSize: number;
  highContrast: boolean;
}

/** The theme's chart colours; the fallbacks are VS Code's dark defaults, for a page shown outside VS Code. */
export function readPalette(): Palette {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  const foreground = v("--vscode-charts-foreground", v("--vscode-foreground", "#cccccc"));
  return {
    foreground,
    blue: v("--vscode-charts-blue", "#3794ff"),
    red: v("--vscode-charts-red", "#f14c4c"),
    green: v("--vscode-charts-green", "#89d185"),
    yellow: v("--vscode-charts-yellow", "#cca700"),
    orange: v("--vscode-charts-orange", "#d18616"),
    purple: v("--vscode-charts-purple", "#b180d7"),
    grid: v("--vscode-charts-lines", "rgba(128, 128, 128, 0.35)"),
    background: v("--vscode-editor-background", "#1e1e1e"),
    hoverBackground: v("--vscode-editorHoverWidget-background", "#252526"),
    hoverForeground: v("--vscode-editorHoverWidget-foreground", foreground),
    hoverBorder: v("--vscode-editorHoverWidget-border", "#454545"),
    fontFamily: v("--vscode-font-family", "sans-serif"),
    fontSize: Number.parseFloat(v("--vscode-font-size", "13")) || 13,
    highContrast: document.body.classList.contains("vscode-high-contrast") || document.body.classList.contains("vscode-high-contrast-light"),
  };
}

/** One curve of a card: its colour by role, so a theme change can recolour it. */
export interface SeriesSpec {
  label: string;
  role: ColorRole;
  dashed?: boolean;
  /** The right-hand axis (a second unit: learning rate beside loss, accuracy beside DPO loss). */
  right?: boolean;
  bar?: boolean;
}

export interface AxisSpec {
  title: string;
  min?: number;
  max?: number;
  /** Values are percentages: ticks and tooltips say "%", and without a `max` the axis fits the data (1-2% is not a flat line on 0-100). */
  percent?: boolean;
}

export interface CardSpec {
  name: string;
  title: string;
  /** "round": one value per round on a category axis; "step": {x: step, y} points on a linear axis. */
  kind: "round" | "step";
  x: string;
  y: AxisSpec;
  y1?: AxisSpec;
  description: string;
}

export type XY = { x: number; y: number };
type Point = number | null | XY;
type AnyChart = Chart<"line" | "bar", Point[], string>;

/** Past this many points a live curve is thinned by half (first and last kept); the host's re-read restores it. */
const LIVE_CAP = 2000;

function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (!hex) return color;
  const n = Number.parseInt(hex[1]!, 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function isXY(p: Point | undefined): p is XY {
  return typeof p === "object" && p !== null;
}

export class ChartCard {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly heading: HTMLHeadingElement;
  private readonly note: HTMLParagraphElement;
  private readonly chart: AnyChart;
  private specs: SeriesSpec[] = [];
  private palette: Palette;
  /** The point the keyboard has moved to (index into the longest curve), or -1. */
  private cursor = -1;

  constructor(readonly spec: CardSpec, palette: Palette, onSave: (card: ChartCard) => void) {
    this.palette = palette;
    this.heading = h("h3", { id: `chart-${spec.name}-title` }, spec.title);
    const save = h("vscode-button", { secondary: true, icon: "save", title: `Save "${spec.title}" as a PNG image`, "aria-label": `Save ${spec.title} as PNG` }, "Save PNG");
    save.addEventListener("click", () => onSave(this));
    this.canvas = h("canvas", { "data-chart": spec.name, "data-points": "0", role: "img", tabindex: "0", "aria-label": `${spec.title}: ${spec.description} Use the arrow keys to read the values.` });
    this.note = h("p", { class: "chart-note", hidden: true });
    this.element = h("section", { class: "chart-card", "aria-labelledby": `chart-${spec.name}-title` },
      h("div", { class: "chart-head" }, this.heading, save),
      h("div", { class: "chart-box" }, this.canvas),
      this.note,
    );
    this.chart = new Chart(this.canvas, this.config()) as AnyChart;
    this.canvas.addEventListener("keydown", (e) => this.onKey(e));
    this.canvas.addEventListener("blur", () => this.clearCursor());
  }

  private config(): ChartConfiguration<"line" | "bar", Point[], string> {
    const { spec } = this;
    const axis = (a: AxisSpec, position: "left" | "right"): Record<string, unknown> => ({
      type: "linear", position, min: a.min, max: a.max, title: { display: true, text: a.title },
      grid: { drawOnChartArea: position === "left" },
      ticks: { callback: (v: number | string) => (typeof v === "number" ? (a.percent ? `${metric(v)}%` : metric(v)) : v) },
      // A percentage axis fits the data but never reaches past 100.
      ...(a.percent ? { afterDataLimits: (scale: { max: number }) => { scale.max = Math.min(scale.max, 100); } } : {}),
    });
    return {
      type: "line",
      data: { labels: [], datasets: [] },
      options: {
        // Live steps arrive several times a second: animating each would keep the chart moving for ever.
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: spec.kind === "step"
            ? { type: "linear", title: { display: true, text: spec.x }, ticks: { precision: 0 } }
            // offset: the first and last rounds sit half a slot in, so their bars are drawn whole.
            : { type: "category", offset: true, title: { display: true, text: spec.x } },
          y: axis(spec.y, "left"),
          ...(spec.y1 ? { y1: axis(spec.y1, "right") } : {}),
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 14, boxHeight: 2 } },
          tooltip: {
            callbacks: {
              title: (items: TooltipItem<"line" | "bar">[]) => {
                const first = items[0];
                if (!first) return "";
                return spec.kind === "step" ? `Step ${(first.raw as XY).x}` : `Round ${first.label}`;
              },
              label: (item: TooltipItem<"line" | "bar">) => {
                const raw = item.raw as Point;
                const y = isXY(raw) ? raw.y : raw;
                const onAxis = (item.dataset as { yAxisID?: string }).yAxisID === "y1" ? spec.y1 : spec.y;
                return `${item.dataset.label ?? ""}: ${y === null ? "—" : `${metric(y)}${onAxis?.percent ? "%" : ""}`}`;
              },
            },
          },
        },
      },
    } as ChartConfiguration<"line" | "bar", Point[], string>;
  }

  private dataset(s: SeriesSpec, data: Point[]): ChartDataset<"line" | "bar", Point[]> {
    const p = this.palette;
    const color = p[s.role];
    const width = p.highContrast ? 3 : 2;
    const step = this.spec.kind === "step";
    return {
      type: s.bar ? "bar" : "line",
      label: s.label,
      data,
      yAxisID: s.right ? "y1" : "y",
      borderColor: color,
      backgroundColor: s.bar ? withAlpha(color, p.highContrast ? 0.9 : 0.55) : color,
      borderWidth: s.bar ? (p.highContrast ? 2 : 0) : width,
      borderDash: s.dashed ? [6, 4] : [],
      pointRadius: step ? 0 : 3,
      pointHoverRadius: step ? 4 : 5,
      pointHitRadius: 6,
      tension: 0,
      // Rounds not evaluated yet are gaps a line may bridge; a step curve's gap is a value that was not a number.
      spanGaps: !step,
      order: s.bar ? 1 : 0,
    } as ChartDataset<"line" | "bar", Point[]>;
  }

  /** Replaces every curve (a state from the host): the chart object and canvas stay, only the data changes. */
  setSeries(specs: SeriesSpec[], data: Point[][], labels: string[] = []): void {
    this.specs = specs;
    this.chart.data.labels = labels;
    this.chart.data.datasets = specs.map((s, i) => this.dataset(s, data[i] ?? []));
    this.cursor = -1;
    this.redraw();
  }

  /** Appends live points to curve `index`, without rebuilding anything. */
  append(index: number, points: XY[]): void {
    const ds = this.chart.data.datasets[index];
    if (!ds || points.length === 0) return;
    const data = ds.data;
    for (const p of points) data.push(p);
    if (data.length > LIVE_CAP) ds.data = data.filter((_, i) => i === 0 || i === data.length - 1 || i % 2 === 0);
    this.redraw();
  }

  setTitle(title: string): void {
    if (this.heading.textContent !== title) this.heading.textContent = title;
  }

  /** A sentence under the chart when it has nothing to draw, so an empty chart is never a puzzle. */
  setNote(text: string | null): void {
    this.note.hidden = text === null;
    this.note.textContent = text ?? "";
  }

  setPalette(p: Palette): void {
    this.palette = p;
    const data = this.chart.data.datasets.map((d) => d.data);
    this.chart.data.datasets = this.specs.map((s, i) => this.dataset(s, data[i] ?? []));
    this.redraw();
  }

  private applyThemeOptions(): void {
    const p = this.palette;
    const o = this.chart.options;
    o.color = p.foreground;
    o.font = { family: p.fontFamily, size: p.fontSize };
    for (const scale of Object.values(o.scales ?? {})) {
      if (!scale) continue;
      scale.ticks = { ...scale.ticks, color: p.foreground };
      scale.grid = { ...scale.grid, color: p.grid };
      scale.border = { ...scale.border, color: p.grid };
      const title = (scale as { title?: { color?: string } }).title;
      if (title) title.color = p.foreground;
    }
    const legend = o.plugins?.legend;
    if (legend?.labels) legend.labels.color = p.foreground;
    const tip = o.plugins?.tooltip;
    if (tip) {
      tip.backgroundColor = p.hoverBackground;
      tip.titleColor = p.hoverForeground;
      tip.bodyColor = p.hoverForeground;
      tip.borderColor = p.hoverBorder;
      tip.borderWidth = 1;
    }
  }

  private redraw(): void {
    this.applyThemeOptions();
    this.chart.update("none");
    this.canvas.dataset["points"] = String(this.pointsDrawn());
    // The left axis's range as drawn, for a test (and a screen reader) to read back.
    const y = this.chart.scales["y"];
    if (y) this.canvas.dataset["yRange"] = `${y.min}..${y.max}`;
  }

  pointsDrawn(): number {
    return this.chart.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== undefined).length, 0);
  }

  /** The chart as a PNG with its title, on the editor's background (a transparent PNG is unreadable elsewhere). */
  toPng(): string {
    const ratio = window.devicePixelRatio || 1;
    const head = Math.round(32 * ratio);
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height + head;
    const ctx = out.getContext("2d");
    if (!ctx) throw new Error("no 2D canvas context to draw the PNG");
    ctx.fillStyle = this.palette.background;
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = this.palette.foreground;
    ctx.font = `600 ${Math.round(this.palette.fontSize * 1.1 * ratio)}px ${this.palette.fontFamily}`;
    ctx.textBaseline = "middle";
    ctx.fillText(this.heading.textContent ?? "", Math.round(8 * ratio), head / 2);
    ctx.drawImage(this.canvas, 0, head);
    return out.toDataURL("image/png");
  }

  /** Arrow keys walk the points and show the tooltip, so the exact values are there without a mouse. */
  private onKey(e: KeyboardEvent): void {
    const longest = this.chart.data.datasets.reduce((a, d) => Math.max(a, d.data.length), 0);
    if (longest === 0) return;
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, PageUp: 10, PageDown: -10 };
    let next: number;
    if (e.key === "Home") next = 0;
    else if (e.key === "End") next = longest - 1;
    else if (e.key === "Escape") return this.clearCursor();
    else if (moves[e.key] !== undefined) next = this.cursor < 0 ? (moves[e.key]! > 0 ? 0 : longest - 1) : this.cursor + moves[e.key]!;
    else return;
    e.preventDefault();
    this.cursor = Math.max(0, Math.min(longest - 1, next));
    this.showCursor();
  }

  private showCursor(): void {
    const sets = this.chart.data.datasets;
    const ref = sets.reduce((best, d, i) => (d.data.length > (sets[best]?.data.length ?? 0) ? i : best), 0);
    const anchor = sets[ref]?.data[this.cursor];
    const active: ActiveElement[] = [];
    sets.forEach((d, datasetIndex) => {
      if (!this.chart.isDatasetVisible(datasetIndex)) return;
      let index = this.cursor;
      if (isXY(anchor)) {
        // Curves are downsampled separately: take each one's point nearest the anchor's step.
        let best = Infinity;
        d.data.forEach((p, i) => {
          if (isXY(p) && Math.abs(p.x - anchor.x) < best) {
            best = Math.abs(p.x - anchor.x);
            index = i;
          }
        });
      }
      const value = d.data[index];
      if (value !== undefined && value !== null) active.push({ datasetIndex, index, element: this.chart.getDatasetMeta(datasetIndex).data[index]! });
    });
    const first = active[0]?.element;
    if (!first) return;
    this.chart.setActiveElements(active);
    this.chart.tooltip?.setActiveElements(active, { x: first.x, y: first.y });
    this.chart.update("none");
  }

  private clearCursor(): void {
    if (this.cursor < 0) return;
    this.cursor = -1;
    this.chart.setActiveElements([]);
    this.chart.tooltip?.setActiveElements([], { x: 0, y: 0 });
    this.chart.update("none");
  }
}
