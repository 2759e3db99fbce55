/**
 * The rationale review app. It renders the host's state (one question of a round) and turns clicks and keys
 * into the protocol's actions; it keeps no decision of its own. Text from the model is always set as text,
 * never parsed as HTML.
 */
import "@vscode-elements/elements/dist/vscode-button/index.js";
import "@vscode-elements/elements/dist/vscode-badge/index.js";
import "@vscode-elements/elements/dist/vscode-single-select/index.js";
import "@vscode-elements/elements/dist/vscode-option/index.js";
import "./style.css";
import { connect, h } from "../common/bridge";
import { REVIEW_FILTERS, isReviewFromHost, sampleTally, type RationaleSpan, type ReviewFilter, type ReviewHostMessage, type ReviewPair, type ReviewQuestion, type ReviewQueue, type ReviewSample, type ReviewWebviewMessage } from "../../src/shared/reviewProtocol";

type StateMessage = Extract<ReviewHostMessage, { type: "state" }>;

const FILTER_LABEL: Record<ReviewFilter, string> = {
  all: "All questions",
  mixed: "Mixed answers",
  "all-wrong": "All wrong",
  "all-right": "All right",
  disagreement: "Right answer, wrong arithmetic",
  decided: "Decided by you",
};

const KEYS: Array<[string, string]> = [
  ["j / k", "next / previous question"],
  ["↓ / ↑", "focus the next / previous rationale or pair"],
  ["r / w", "mark the focused rationale right / wrong"],
  ["c / v", "set it as chosen / rejected (a pair is forced when both are set)"],
  ["x", "exclude or include the focused rationale or pair"],
  ["s", "swap the focused pair"],
  ["e", "write a rationale (from the focused one)"],
  ["n", "add a note"],
  ["u", "undo the last decision on this question"],
  ["o", "open the record in its JSONL file"],
  ["f", "next filter"],
  ["?", "show or hide these keys"],
];

let state: StateMessage | null = null;
/** A pair being set by hand: one side picked, waiting for the other. */
let pending: { chosen?: string; rejected?: string } = {};
/** Which card had focus, kept across re-renders of the same question. */
let focusKey: string | null = null;
let notice: { level: string; text: string } | null = null;
let showKeys = false;
/** The question on the page, to tell a re-render after a decision from another question. */
let shownQuestion: string | null = null;
/** The next render brings the focused card into view (a sample opened from the explorer or a CodeLens). */
let revealFocus = false;

const bridge = connect<ReviewWebviewMessage, unknown>((raw) => {
  if (!isReviewFromHost(raw)) return;
  const m = raw;
  switch (m.type) {
    case "state":
      if (state?.question?.questionId !== m.question?.questionId) {
        pending = {};
        focusKey = null;
      }
      state = m;
      notice = null;
      if (m.focusHash) {
        focusKey = `sample:${m.focusHash}`;
        revealFocus = true;
      }
      render();
      break;
    case "queue":
      if (state) {
        state.queue = m.queue;
        renderHeader();
      }
      break;
    case "notice":
      notice = { level: m.level, text: m.text };
      renderNotice();
      break;
  }
});

const send = (m: ReviewWebviewMessage): void => bridge.post(m);
const root = document.getElementById("app")!;
const headerEl = h("header", { class: "bar" });
const noticeEl = h("div", { class: "notice", role: "status", "aria-live": "polite" });
const bodyEl = h("div", { class: "body" });
root.replaceChildren(headerEl, noticeEl, bodyEl);

function button(label: string, action: string, title: string, onClick: () => void, opts: { secondary?: boolean; icon?: string } = {}): HTMLElement {
  const b = h("vscode-button", { "data-action": action, title, secondary: opts.secondary ?? true, ...(opts.icon ? { icon: opts.icon } : {}) }, label);
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    onClick();
  });
  return b;
}

function queueText(q: ReviewQueue): string {
  const filter = FILTER_LABEL[q.filter].toLowerCase();
  // A decision can move the shown question out of the filter: say so, rather than a position it no longer has.
  if (q.position === null && q.total !== null) return `This question is no longer in ${filter} · ${q.total.toLocaleString()} question${q.total === 1 ? "" : "s"} in it; Next goes on from here`;
  const where = q.position === null ? "…" : `${(q.position + 1).toLocaleString()}`;
  const of = q.total === null ? "…" : q.total.toLocaleString();
  return `Q ${where} of ${of} · ${filter}`;
}

function renderHeader(): void {
  if (!state) return;
  const s = state;
  const roundSelect = h("vscode-single-select", { "data-testid": "round", title: "Run and round" });
  for (const run of s.runs) {
    for (const r of run.rounds) {
      const value = `${run.runId}\u0000${r}`;
      roundSelect.append(h("vscode-option", { value, selected: run.runId === s.runId && r === s.round }, `${s.runs.length > 1 ? `${run.runId} · ` : ""}round ${r}${run.mode === "st" ? " (ST)" : ""}`));
    }
  }
  roundSelect.addEventListener("change", () => {
    const [runId, round] = String((roundSelect as unknown as { value: string }).value).split("\u0000");
    if (runId && round) send({ type: "selectRound", runId, round: Number(round) });
  });
  const filterSelect = h("vscode-single-select", { "data-testid": "filter", title: "Which questions to walk through (f)" });
  for (const f of REVIEW_FILTERS) {
    const n = s.queue.counts[f];
    filterSelect.append(h("vscode-option", { value: f, selected: f === s.queue.filter }, `${FILTER_LABEL[f]}${n === undefined ? "" : ` (${n.toLocaleString()})`}`));
  }
  filterSelect.addEventListener("change", () => send({ type: "setFilter", filter: (filterSelect as unknown as { value: ReviewFilter }).value }));
  if (s.round === null) {
    // Nothing to walk through yet: no position, no navigation.
    headerEl.replaceChildren(h("span", { class: "where", "data-testid": "position" }, "Rationale review"), button("Keys", "keys", "Keyboard shortcuts (?)", () => toggleKeys(), { icon: "keyboard" }));
    return;
  }
  headerEl.replaceChildren(
    h("span", { class: "where", "data-testid": "position" }, queueText(s.queue)),
    button("Previous", "prev", "Previous question (k)", () => send({ type: "navigate", to: "prev" }), { icon: "arrow-left" }),
    button("Next", "next", "Next question (j)", () => send({ type: "navigate", to: "next" }), { icon: "arrow-right", secondary: false }),
    filterSelect,
    roundSelect,
    button("Undo", "undo", "Undo the last decision on this question (u)", () => send({ type: "undo" }), { icon: "discard" }),
    button("Keys", "keys", "Keyboard shortcuts (?)", () => toggleKeys(), { icon: "keyboard" }),
  );
}

function renderNotice(): void {
  noticeEl.replaceChildren();
  const texts: Array<[string, string]> = [];
  if (notice) texts.push([notice.level, notice.text]);
  if (pending.chosen || pending.rejected) {
    const q = state?.question;
    const name = (hash: string | undefined): string => (hash ? labelOf(q, hash) : "…");
    texts.push(["info", `New pair: ${name(pending.chosen)} ≻ ${name(pending.rejected)} — ${pending.chosen ? "pick the rejected one (v)" : "pick the chosen one (c)"}; Esc cancels.`]);
  }
  for (const [level, text] of texts) noticeEl.append(h("p", { class: `notice-${level}` }, text));
}

function toggleKeys(): void {
  showKeys = !showKeys;
  render();
}

function labelOf(q: ReviewQuestion | null | undefined, hash: string): string {
  if (!q) return hash.slice(0, 6);
  if (q.gold?.hash === hash) return "gold";
  const s = q.samples.find((x) => x.hash === hash);
  if (s) return s.stage === "dpo" ? `sample ${s.number}` : `SFT-step sample ${s.number}`;
  if (q.written.some((w) => w.hash === hash)) return "your rationale";
  return hash.slice(0, 6);
}

function spansView(spans: readonly RationaleSpan[]): HTMLElement {
  const pre = h("div", { class: "rationale" });
  for (const s of spans) {
    if (s.kind === "text") pre.append(s.text);
    else if (s.kind === "answer") pre.append(h("span", { class: `final ${s.correct ? "ok" : "bad"}`, title: s.correct ? "final answer matches the gold answer" : "final answer differs from the gold answer" }, s.text));
    else {
      const checked = s.status === "ok" ? `${s.expression} = ${s.written} ✓` : s.status === "wrong" ? `${s.expression} is ${s.expected}, not ${s.written}` : s.status === "unparseable" ? `the calculator cannot read ${s.expression}` : `${s.written} is not a number`;
      const title = s.copiedAs === undefined ? checked : `${checked}, but the text goes on with ${s.copiedAs}`;
      const el = h("span", { class: `calc calc-${s.status}${s.forced ? " forced" : ""}`, title: `${title}${s.forced ? " · result written by the calculator" : ""}`, "data-status": s.status }, s.text);
      pre.append(el);
      // Set apart from the text that follows, so "should be 2" and "3 books" do not read "should be 23 books".
      if (s.status === "wrong") pre.append(h("span", { class: "expected" }, ` [should be ${s.expected}] `));
      if (s.copiedAs !== undefined) pre.append(h("span", { class: "expected" }, ` [the text says ${s.copiedAs}, not ${s.written}] `));
    }
  }
  return pre;
}

function sampleCard(q: ReviewQuestion, s: ReviewSample): HTMLElement {
  const key = `sample:${s.hash}`;
  const verdictText = s.correct ? "right" : "wrong";
  const calc = s.calcTotal === 0 ? "no calculations" : `calculator ${s.calcOk}/${s.calcTotal} ok${s.calcForced ? `, ${s.calcForced} forced` : ""}`;
  const head = h("div", { class: "card-head" },
    h("span", { class: `verdict ${s.correct ? "ok" : "bad"}` }, `${s.correct ? "✓" : "✗"} ${verdictText}`),
    h("strong", {}, labelOf(q, s.hash)),
    h("span", { class: "answer" }, `#### ${s.answer ?? "?"}`),
    h("span", { class: "dim" }, `logp ${s.logProb.toFixed(1)}`),
    h("span", { class: s.calcOk < s.calcTotal ? "warn" : "dim" }, calc),
    s.unfinished ? h("span", { class: "warn" }, "stopped at the token limit") : null,
    ...s.roles.map((r) => h("vscode-badge", { variant: "default", "data-role": r }, r)),
    s.excluded ? h("vscode-badge", { variant: "default", "data-role": "excluded" }, "excluded") : null,
    s.verdict ? h("span", { class: "person", "data-testid": "decided" }, `decided by you: ${s.verdict === "correct" ? "right" : "wrong"}${s.autoCorrect !== s.correct ? " (answer check said " + (s.autoCorrect ? "right" : "wrong") + ")" : ""}`)
      : s.decidedByPerson ? h("span", { class: "person", "data-testid": "decided" }, "decided by you") : null,
    pending.chosen === s.hash ? h("span", { class: "pending" }, "← new chosen") : null,
    pending.rejected === s.hash ? h("span", { class: "pending" }, "← new rejected") : null,
  );
  const actions = h("div", { class: "actions" },
    button("Right", "right", "Mark right (r)", () => send({ type: "mark", hash: s.hash, verdict: "correct" })),
    button("Wrong", "wrong", "Mark wrong (w)", () => send({ type: "mark", hash: s.hash, verdict: "wrong" })),
    button("Chosen", "chosen", "Set as the chosen side of a new pair (c)", () => pick("chosen", s.hash)),
    button("Rejected", "rejected", "Set as the rejected side of a new pair (v)", () => pick("rejected", s.hash)),
    button(s.excluded ? "Include" : "Exclude", "exclude", "Exclude from training, or include again (x)", () => send({ type: "exclude", hash: s.hash, excluded: !s.excluded })),
    button("Edit", "edit", "Write a better rationale from this one (e)", () => send({ type: "editRationale", fromHash: s.hash })),
    button("Note", "note", "Add a note (n)", () => send({ type: "note", hash: s.hash })),
    button("Record", "open", "Open the JSONL record (o)", () => send({ type: "openRecord", hash: s.hash })),
  );
  const notes = s.notes.length ? h("ul", { class: "notes" }, ...s.notes.map((n) => h("li", {}, `note: ${n}`))) : null;
  return h("section", { class: `card ${s.correct ? "is-right" : "is-wrong"}${s.excluded ? " is-excluded" : ""}`, tabindex: "0", "data-testid": "sample", "data-hash": s.hash, "data-key": key, "aria-label": `${labelOf(q, s.hash)}, ${verdictText}` }, head, spansView(s.spans), notes, actions);
}

function pairCard(q: ReviewQuestion, p: ReviewPair, i: number): HTMLElement {
  const key = `pair:${p.chosenHash}>${p.rejectedHash}`;
  const diff = h("div", { class: "diff rationale", title: "word diff: removed = only in the rejected, added = only in the chosen" });
  for (const d of p.diff) {
    diff.append(d.op === "same" ? d.text : h(d.op === "added" ? "ins" : "del", {}, d.text));
    // A space neither text has, so a removed last word does not run into the added one ("2426").
    if (d.spaceAfter) diff.append(" ");
  }
  return h("section", { class: `card pair pair-${p.status}`, tabindex: "0", "data-testid": "pair", "data-chosen": p.chosenHash, "data-rejected": p.rejectedHash, "data-status": p.status, "data-key": key },
    h("div", { class: "card-head" },
      h("strong", {}, `(${i + 1}) ${p.chosenLabel} ≻ ${p.rejectedLabel}`),
      h("span", { class: p.status === "dropped" ? "warn" : p.origin === "person" || p.status !== "active" ? "person" : "dim", "data-testid": "next-round" }, p.nextRound),
      p.similarity !== null ? h("span", { class: "dim" }, `similarity ${p.similarity.toFixed(2)}`) : null,
    ),
    diff,
    h("div", { class: "actions" },
      button("Swap", "swap", "Swap chosen and rejected (s)", () => send({ type: "swapPair", chosenHash: p.chosenHash, rejectedHash: p.rejectedHash })),
      button(p.status === "excluded" ? "Include" : "Exclude", "exclude-pair", "Exclude this pair from training, or include it again (x)", () => send({ type: "excludePair", chosenHash: p.chosenHash, rejectedHash: p.rejectedHash, excluded: p.status !== "excluded" })),
    ),
  );
}

function pick(side: "chosen" | "rejected", hash: string): void {
  pending = { ...pending, [side]: hash };
  if (pending.chosen && pending.rejected) {
    if (pending.chosen !== pending.rejected) send({ type: "forcePair", chosenHash: pending.chosen, rejectedHash: pending.rejected });
    pending = {};
  }
  render();
}

function render(): void {
  renderHeader();
  renderNotice();
  root.setAttribute("aria-busy", "false");
  if (!state) return;
  const q = state.question;
  const parts: Array<HTMLElement | null> = [];
  if (showKeys) parts.push(h("table", { class: "keys" }, ...KEYS.map(([k, what]) => h("tr", {}, h("td", {}, h("kbd", {}, k)), h("td", {}, what)))));
  if (!q) {
    parts.push(h("p", { class: "empty", "data-testid": "empty" }, state.empty ?? "Nothing to show."));
    if (state.round === null) parts.push(h("p", {}, button("Start a self-training round", "start-round", "Start Self-Training Round: samples, pairs, DPO, pseudo-labels, SFT, evaluation", () => send({ type: "startRound" }), { secondary: false, icon: "play" })));
    bodyEl.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
    return;
  }
  parts.push(
    h("section", { class: "question", "data-testid": "question", "data-question-id": q.questionId },
      h("h2", {}, `Q ${q.questionId} · round ${q.round} · ${sampleTally(q.samples)}`),
      h("p", { class: "question-text" }, q.question),
    ),
  );
  if (q.gold) {
    const goldCard = h("section", { class: "card gold", tabindex: "0", "data-testid": "gold", "data-hash": q.gold.hash, "data-key": `sample:${q.gold.hash}` },
      h("div", { class: "card-head" }, h("strong", {}, "Gold"), h("span", { class: "answer" }, `#### ${q.goldAnswer}`), pending.chosen === q.gold.hash ? h("span", { class: "pending" }, "← new chosen") : null),
      spansView(q.gold.spans),
      h("div", { class: "actions" },
        button("Chosen", "chosen", "Set the gold rationale as the chosen side of a new pair (c)", () => pick("chosen", q.gold!.hash)),
        button("Edit", "edit", "Write a rationale from the gold one (e)", () => send({ type: "editRationale", fromHash: q.gold!.hash })),
      ),
    );
    parts.push(goldCard);
  } else {
    parts.push(h("p", { class: "dim" }, `Gold answer: ${q.goldAnswer} (the gold rationale's data file is not at hand).`));
  }
  parts.push(h("h3", {}, `Sampled rationales (${q.samples.length})`));
  for (const s of q.samples) parts.push(sampleCard(q, s));
  for (const w of q.written) {
    const held = !w.confirmed;
    parts.push(h("section", { class: `card written${held ? " is-held" : ""}`, tabindex: "0", "data-testid": "written", "data-hash": w.hash, "data-key": `sample:${w.hash}`, "data-confirmed": String(w.confirmed) },
      h("div", { class: "card-head" }, h("strong", {}, "Your rationale"),
        held ? h("span", { class: "warn" }, "held · not used for training until you confirm it")
          : h("span", { class: "person" }, `written by you${w.problems.length ? ", confirmed as written" : ""} · a positive next round`)),
      w.problems.length ? h("ul", { class: "problems", "data-testid": "problems" }, ...w.problems.map((p) => h("li", {}, `arithmetic check: ${p}`))) : null,
      spansView(w.spans),
      h("div", { class: "actions" },
        held ? button("Confirm as written", "confirm", "Use it for training as written, although the arithmetic check questions it", () => send({ type: "confirmRationale", hash: w.hash }), { secondary: false }) : null,
        button("Edit", "edit", "Edit this rationale (e)", () => send({ type: "editRationale", fromHash: w.hash })),
        button("Chosen", "chosen", "Set as the chosen side of a new pair (c)", () => pick("chosen", w.hash)),
      ),
    ));
  }
  parts.push(h("h3", {}, `Preference pairs (${q.pairs.length})`));
  if (q.pairs.length === 0) parts.push(h("p", { class: "dim" }, "No pairs for this question: set one with Chosen (c) and Rejected (v)."));
  q.pairs.forEach((p, i) => parts.push(pairCard(q, p, i)));
  if (q.decisions.length) {
    parts.push(h("h3", {}, "Decided by you"), h("ol", { class: "decisions", "data-testid": "decisions" }, ...q.decisions.map((d) => h("li", { title: d.at }, d.summary))));
  }
  // The page (not the body element) scrolls. The same question re-rendered after a decision keeps its place; another
  // question opens at its top, or with the sample it was opened for in view.
  const scroller = document.scrollingElement ?? document.documentElement;
  const sameQuestion = shownQuestion === q.questionId;
  const scrollTop = scroller.scrollTop;
  bodyEl.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  shownQuestion = q.questionId;
  // The sticky bar covers the top of the page: scrolling into view leaves room for it.
  document.documentElement.style.scrollPaddingTop = `${headerEl.offsetHeight + 8}px`;
  const again = focusKey ? bodyEl.querySelector<HTMLElement>(`[data-key="${CSS.escape(focusKey)}"]`) : null;
  (again ?? bodyEl.querySelector<HTMLElement>(".card[data-testid=sample]"))?.focus({ preventScroll: true });
  if (sameQuestion && !revealFocus) scroller.scrollTop = scrollTop;
  // Centred: the bar above may still grow (wrap) when the queue's counts arrive.
  else if (revealFocus && again) again.scrollIntoView({ block: "center" });
  else scroller.scrollTop = 0;
  revealFocus = false;
}

bodyEl.addEventListener("focusin", (e) => {
  const card = (e.target as HTMLElement).closest<HTMLElement>(".card");
  if (card?.dataset["key"]) focusKey = card.dataset["key"];
});

function focusedCard(): HTMLElement | null {
  return (document.activeElement as HTMLElement | null)?.closest<HTMLElement>(".card") ?? null;
}

function moveFocus(delta: number): void {
  const cards = [...bodyEl.querySelectorAll<HTMLElement>(".card")];
  const at = cards.indexOf(focusedCard() ?? cards[0]!);
  const next = cards[Math.min(cards.length - 1, Math.max(0, at + delta))];
  next?.focus();
  next?.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target as HTMLElement;
  if (target.closest("vscode-single-select, input, textarea")) return;
  const card = focusedCard();
  const hash = card?.dataset["hash"];
  const isSample = card?.dataset["testid"] === "sample";
  const isPair = card?.dataset["testid"] === "pair";
  const q = state?.question;
  const sample = isSample && q ? q.samples.find((s) => s.hash === hash) : undefined;
  const act = (): boolean => {
    switch (e.key) {
      case "j": send({ type: "navigate", to: "next" }); return true;
      case "k": send({ type: "navigate", to: "prev" }); return true;
      case "ArrowDown": moveFocus(1); return true;
      case "ArrowUp": moveFocus(-1); return true;
      case "u": send({ type: "undo" }); return true;
      case "?": toggleKeys(); return true;
      case "Escape": pending = {}; renderNotice(); render(); return true;
      case "f": {
        const i = REVIEW_FILTERS.indexOf(state?.queue.filter ?? "mixed");
        send({ type: "setFilter", filter: REVIEW_FILTERS[(i + 1) % REVIEW_FILTERS.length]! });
        return true;
      }
      case "e": send({ type: "editRationale", fromHash: hash ?? null }); return true;
    }
    if (sample) {
      switch (e.key) {
        case "r": send({ type: "mark", hash: sample.hash, verdict: "correct" }); return true;
        case "w": send({ type: "mark", hash: sample.hash, verdict: "wrong" }); return true;
        case "x": send({ type: "exclude", hash: sample.hash, excluded: !sample.excluded }); return true;
        case "n": send({ type: "note", hash: sample.hash }); return true;
        case "o": send({ type: "openRecord", hash: sample.hash }); return true;
      }
    }
    if (hash && (e.key === "c" || e.key === "v") && !isPair) {
      pick(e.key === "c" ? "chosen" : "rejected", hash);
      return true;
    }
    if (isPair && card) {
      const chosenHash = card.dataset["chosen"]!;
      const rejectedHash = card.dataset["rejected"]!;
      switch (e.key) {
        case "s": send({ type: "swapPair", chosenHash, rejectedHash }); return true;
        case "x": send({ type: "excludePair", chosenHash, rejectedHash, excluded: card.dataset["status"] !== "excluded" }); return true;
      }
    }
    return false;
  };
  if (act()) e.preventDefault();
});
