import { test } from "node:test";
import assert from "node:assert/strict";
import { checkReviewMessage, isReviewFromHost, type ReviewWebviewMessage } from "../../src/shared/reviewProtocol";

/** One of every message the review webview sends, as the webview builds them. */
const EVERY: ReviewWebviewMessage[] = [
  { type: "ready" },
  { type: "log", level: "warn", text: "CSP blocked inline content" },
  { type: "navigate", to: "next" },
  { type: "setFilter", filter: "disagreement" },
  { type: "selectRound", runId: "2026-11-25-a", round: 2 },
  { type: "mark", hash: "0123456789abcdef", verdict: "wrong" },
  { type: "exclude", hash: "0123456789abcdef", excluded: true },
  { type: "forcePair", chosenHash: "aaaaaaaaaaaaaaaa", rejectedHash: "bbbbbbbbbbbbbbbb" },
  { type: "swapPair", chosenHash: "aaaaaaaaaaaaaaaa", rejectedHash: "bbbbbbbbbbbbbbbb" },
  { type: "excludePair", chosenHash: "aaaaaaaaaaaaaaaa", rejectedHash: "bbbbbbbbbbbbbbbb", excluded: false },
  { type: "editRationale", fromHash: null },
  { type: "editRationale", fromHash: "aaaaaaaaaaaaaaaa" },
  { type: "note", hash: "aaaaaaaaaaaaaaaa" },
  { type: "undo" },
  { type: "openRecord", hash: "aaaaaaaaaaaaaaaa" },
];

test("every review message type round-trips through JSON and the host's check unchanged", () => {
  const types = new Set(EVERY.map((m) => m.type));
  // The list above must cover the union: a new message type without a case here fails.
  assert.equal(types.size, 14);
  for (const m of EVERY) {
    const checked = checkReviewMessage(JSON.parse(JSON.stringify(m)));
    assert.ok(checked.ok, `${m.type}: ${checked.ok ? "" : checked.reason}`);
    assert.deepEqual(checked.value, m);
  }
});

test("unknown fields are dropped: the host acts only on what the protocol names", () => {
  const checked = checkReviewMessage({ type: "mark", hash: "aaaa", verdict: "correct", extra: "<script>" });
  assert.ok(checked.ok);
  assert.deepEqual(checked.value, { type: "mark", hash: "aaaa", verdict: "correct" });
});

test("malformed messages are refused with a reason that names the field", () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /must be an object, got null/],
    [[1, 2], /must be an object, got an array/],
    ["ready", /must be an object, got string/],
    [{}, /unknown message type undefined/],
    [{ type: "delete-everything" }, /unknown message type "delete-everything"/],
    [{ type: "mark", hash: "aaaa", verdict: "maybe" }, /"verdict" must be one of correct, wrong, got "maybe"/],
    [{ type: "mark", verdict: "wrong" }, /"hash" must be a non-empty string, got nothing/],
    [{ type: "mark", hash: "", verdict: "wrong" }, /"hash" must be a non-empty string/],
    [{ type: "mark", hash: "x".repeat(129), verdict: "wrong" }, /"hash" must be at most 128 characters/],
    [{ type: "exclude", hash: "aaaa", excluded: "yes" }, /"excluded" must be true or false, got "yes"/],
    [{ type: "selectRound", runId: "r", round: 1.5 }, /"round" must be an integer/],
    [{ type: "selectRound", runId: "r", round: -1 }, /"round" must be an integer in \[0, 100000\]/],
    [{ type: "navigate", to: "sideways" }, /"to" must be one of next, prev, first/],
    [{ type: "setFilter", filter: "everything" }, /"filter" must be one of all, mixed/],
    [{ type: "forcePair", chosenHash: "aaaa", rejectedHash: "aaaa" }, /chosen and rejected must be different/],
    [{ type: "editRationale", fromHash: 7 }, /"fromHash" must be a string, got 7/],
    [{ type: "log", level: "debug", text: "x" }, /"level" must be one of info, warn, error/],
    [{ type: "log", level: "info", text: "x".repeat(4001) }, /"text" must be at most 4000 characters/],
  ];
  for (const [raw, reason] of cases) {
    const checked = checkReviewMessage(raw);
    assert.equal(checked.ok, false, `accepted ${JSON.stringify(raw)?.slice(0, 80)}`);
    if (!checked.ok) assert.match(checked.reason, reason);
  }
});

test("the review webview takes only the host's message types, as the dashboard does (another frame may post too)", () => {
  for (const m of [{ type: "state", runs: [], runId: null, round: null, queue: { total: 0 }, question: null }, { type: "queue", queue: {} }, { type: "notice", level: "info", text: "x" }]) {
    assert.ok(isReviewFromHost(m), m.type);
  }
  for (const foreign of [null, "state", {}, { type: "ready" }, { type: "mark" }, { type: 3 }]) assert.equal(isReviewFromHost(foreign), false, JSON.stringify(foreign));
});
