/**
 * The table of rounds: sortable by any column (header buttons, aria-sort), each row opens its round in the
 * Dataset Explorer by click, Enter or Space; the arrow keys move between rows.
 */
import { h } from "../common/bridge";
import type { RoundRow } from "../../src/shared/dashboardProtocol";
import { count, decimal, duration, percent } from "./format";

export type SortKey = "round" | "devAccuracy" | "testAccuracy" | "devPassAtK" | "testPassAtK" | "positives" | "negatives" | "pairs" | "pseudoLabels" | "distinctPerQuestion" | "tokensPerSecond" | "wallMs";
export interface Sort {
  key: SortKey;
  descending: boolean;
}

interface Column {
  key: SortKey;
  label: (k: number | null) => string;
  title: string;
  cell: (r: RoundRow) => string;
}

const COLUMNS: Column[] = [
  { key: "round", label: () => "Round", title: "Round 0 is the warm-up SFT", cell: (r) => String(r.round) },
  { key: "devAccuracy", label: () => "Dev acc %", title: "Greedy accuracy on the dev split", cell: (r) => percent(r.devAccuracy) },
  { key: "testAccuracy", label: () => "Test acc %", title: "Greedy accuracy on the test split", cell: (r) => percent(r.testAccuracy) },
  { key: "devPassAtK", label: (k) => `Dev pass@${k ?? "k"} %`, title: "A right answer among k samples, dev split", cell: (r) => percent(r.devPassAtK) },
  { key: "testPassAtK", label: (k) => `Test pass@${k ?? "k"} %`, title: "A right answer among k samples, test split", cell: (r) => percent(r.testPassAtK) },
  { key: "positives", label: () => "Positives", title: "Right rationales available for pairs", cell: (r) => count(r.positives) },
  { key: "negatives", label: () => "Negatives", title: "Wrong rationales available for pairs", cell: (r) => count(r.negatives) },
  { key: "pairs", label: () => "Pairs", title: "Preference pairs built for DPO", cell: (r) => count(r.pairs) },
  { key: "pseudoLabels", label: () => "Pseudo-labels", title: "Sampled rationales kept for SFT", cell: (r) => count(r.pseudoLabels) },
  { key: "distinctPerQuestion", label: () => "Distinct / question", title: "Distinct pseudo-label rationales per question that has any", cell: (r) => decimal(r.distinctPerQuestion) },
  { key: "tokensPerSecond", label: () => "Tokens/s", title: "Training and sampling throughput of the round", cell: (r) => count(r.tokensPerSecond === null ? null : Math.round(r.tokensPerSecond)) },
  { key: "wallMs", label: () => "Wall time", title: "Time from the round's first stage to its evaluation", cell: (r) => duration(r.wallMs) },
];

export class RoundsTable {
  readonly element: HTMLElement;
  private readonly head: HTMLTableRowElement;
  private readonly body: HTMLTableSectionElement;
  private rows: RoundRow[] = [];
  private k: number | null = null;

  constructor(
    private sort: Sort,
    private readonly onSort: (sort: Sort) => void,
    private readonly onReveal: (round: number) => void,
  ) {
    this.head = h("tr");
    this.body = h("tbody");
    const table = h("table", { class: "rounds", "data-testid": "rounds-table", "aria-describedby": "rounds-hint" },
      h("caption", { class: "visually-hidden" }, "Rounds of the run"),
      h("thead", {}, this.head),
      this.body,
    );
    this.body.addEventListener("click", (e) => {
      const row = (e.target as Element).closest("tr");
      if (row?.dataset["round"] !== undefined) this.onReveal(Number(row.dataset["round"]));
    });
    this.body.addEventListener("keydown", (e) => this.onKey(e));
    this.element = h("div", { class: "table-wrap" }, table);
  }

  update(rows: RoundRow[]): void {
    this.rows = rows;
    this.k = [...rows].reverse().find((r) => r.k !== null)?.k ?? null;
    this.renderHead();
    this.renderBody();
  }

  private renderHead(): void {
    this.head.replaceChildren(...COLUMNS.map((c) => {
      const active = this.sort.key === c.key;
      const icon = active ? (this.sort.descending ? "codicon-arrow-down" : "codicon-arrow-up") : "codicon-blank";
      const button = h("button", { type: "button", class: "sort", title: `${c.title}. Sort by this column.` }, c.label(this.k), h("span", { class: `codicon ${icon}`, "aria-hidden": "true" }));
      button.addEventListener("click", () => {
        this.sort = { key: c.key, descending: active ? !this.sort.descending : c.key !== "round" };
        this.onSort(this.sort);
        this.renderHead();
        this.renderBody();
        (this.head.querySelectorAll("button.sort")[COLUMNS.indexOf(c)] as HTMLButtonElement | undefined)?.focus();
      });
      return h("th", { scope: "col", class: c.key === "round" ? "" : "num", "aria-sort": active ? (this.sort.descending ? "descending" : "ascending") : "none" }, button);
    }));
  }

  private sorted(): RoundRow[] {
    const { key, descending } = this.sort;
    // Empty cells go last whichever way the column is sorted: they are "not yet", not "smallest".
    return [...this.rows].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      if (x === null || y === null) return x === y ? a.round - b.round : x === null ? 1 : -1;
      return (descending ? y - x : x - y) || a.round - b.round;
    });
  }

  private renderBody(): void {
    const focused = (document.activeElement as HTMLElement | null)?.closest?.("tr")?.dataset["round"];
    this.body.replaceChildren(...this.sorted().map((r) => h("tr", { tabindex: "0", "data-round": String(r.round), title: `Reveal round ${r.round} in the Dataset Explorer` },
      ...COLUMNS.map((c) => (c.key === "round" ? h("th", { scope: "row" }, c.cell(r)) : h("td", { class: "num" }, c.cell(r)))),
    )));
    if (focused !== undefined) (this.body.querySelector(`tr[data-round="${focused}"]`) as HTMLElement | null)?.focus();
  }

  private onKey(e: KeyboardEvent): void {
    const row = (e.target as Element).closest("tr");
    if (!row) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.onReveal(Number(row.dataset["round"]));
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = (e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
      next?.focus();
    }
  }
}
