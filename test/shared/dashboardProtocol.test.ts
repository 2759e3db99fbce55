import { test } from "node:test";
import assert from "node:assert/strict";
import { checkDashboardMessage, isDashboardFromHost, MAX_PNG_DATA_URL, PNG_DATA_URL_PREFIX } from "../../src/shared/dashboardProtocol";
import type { DashboardFromHost, DashboardState, DashboardToHost, RunMetrics } from "../../src/shared/dashboardProtocol";

// A real 1×1 PNG, so the data URL is what a canvas makes.
const PNG_1X1 = `${PNG_DATA_URL_PREFIX}iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==`;

const TO_HOST: DashboardToHost[] = [
  { type: "ready" },
  { type: "log", level: "error", text: "CSP blocked inline content (style-src)" },
  { type: "log", level: "info", text: "" },
  { type: "selectRun", runId: "2026-11-25-a" },
  { type: "revealRound", runId: "2026-11-25-a", round: 3 },
  { type: "savePng", runId: "2026-11-25-a", chart: "dpo-loss", dataUrl: PNG_1X1 },
  { type: "refresh" },
];

test("every webview → host message survives JSON and the host's guard unchanged", () => {
  const kinds = new Set<string>();
  for (const m of TO_HOST) {
    const wire: unknown = JSON.parse(JSON.stringify(m));
    const checked = checkDashboardMessage(wire);
    assert.ok(checked.ok, `${m.type}: ${checked.ok ? "" : checked.reason}`);
    assert.deepEqual(checked.value, m);
    kinds.add(m.type);
  }
  assert.deepEqual([...kinds].sort(), ["log", "ready", "refresh", "revealRound", "savePng", "selectRun"]);
});

test("the guard keeps only the fields it knows", () => {
  const checked = checkDashboardMessage({ type: "revealRound", runId: "r", round: 1, extra: "<script>" });
  assert.ok(checked.ok);
  assert.deepEqual(checked.value, { type: "revealRound", runId: "r", round: 1 });
});

function rejects(raw: unknown, field: RegExp): void {
  const checked = checkDashboardMessage(raw);
  assert.equal(checked.ok, false, `accepted ${JSON.stringify(raw)?.slice(0, 120)}`);
  if (!checked.ok) assert.match(checked.reason, field);
}

test("malformed messages are refused with a reason that names the field", () => {
  rejects(null, /must be an object, got null/);
  rejects([], /must be an object, got an array/);
  rejects("ready", /must be an object, got string/);
  rejects({}, /unknown message type undefined/);
  rejects({ type: "deleteRun", runId: "x" }, /unknown message type "deleteRun" \(known: .*savePng/);
  rejects({ type: "__proto__" }, /unknown message type/);
  rejects({ type: "log", text: "x" }, /"level" must be one of info, warn, error/);
  rejects({ type: "log", level: "debug", text: "x" }, /"level" must be one of/);
  rejects({ type: "log", level: "info" }, /"text" must be a string, got nothing/);
  rejects({ type: "log", level: "info", text: "x".repeat(4001) }, /"text" must be at most 4000 characters/);
  rejects({ type: "selectRun" }, /"runId" must be a non-empty string/);
  rejects({ type: "selectRun", runId: "" }, /"runId" must be a non-empty string/);
  rejects({ type: "selectRun", runId: 7 }, /"runId" must be a non-empty string, got 7/);
  rejects({ type: "selectRun", runId: "a".repeat(101) }, /"runId" must be at most 100 characters/);
  rejects({ type: "revealRound", runId: "r" }, /"round" must be an integer/);
  rejects({ type: "revealRound", runId: "r", round: "2" }, /"round" must be an integer/);
  rejects({ type: "revealRound", runId: "r", round: 1.5 }, /"round" must be an integer/);
  rejects({ type: "revealRound", runId: "r", round: -1 }, /"round" must be an integer in \[0, /);
  rejects({ type: "savePng", runId: "r", dataUrl: PNG_1X1 }, /"chart" must be a non-empty string/);
  rejects({ type: "savePng", runId: "r", chart: "../../etc/passwd", dataUrl: PNG_1X1 }, /"chart" must be lower-case letters/);
  rejects({ type: "savePng", runId: "r", chart: "x".repeat(41), dataUrl: PNG_1X1 }, /"chart" must be at most 40 characters/);
  rejects({ type: "savePng", runId: "r", chart: "accuracy" }, /"dataUrl" must be a non-empty string/);
});

test("a PNG data URL is checked: the prefix, base64 only, and a size limit", () => {
  const png = (dataUrl: string): unknown => ({ type: "savePng", runId: "r", chart: "accuracy", dataUrl });
  rejects(png("data:image/jpeg;base64,/9j/4AAQ"), /"dataUrl" must be a base64 PNG data URL/);
  rejects(png("data:image/svg+xml;base64,PHN2Zz4="), /"dataUrl" must be a base64 PNG data URL/);
  rejects(png("https://example.com/chart.png"), /"dataUrl" must be a base64 PNG data URL/);
  rejects(png(PNG_DATA_URL_PREFIX), /"dataUrl" must be a base64 PNG data URL/);
  rejects(png(`${PNG_DATA_URL_PREFIX}iVBO<script>`), /"dataUrl" must be a base64 PNG data URL/);
  rejects(png(`${PNG_DATA_URL_PREFIX}iVBORw0`), /"dataUrl" must be a base64 PNG data URL/); // length not a multiple of 4
  rejects(png(`${PNG_DATA_URL_PREFIX}${"A".repeat(MAX_PNG_DATA_URL)}`), /"dataUrl" must be at most \d+ characters/);
  assert.ok(checkDashboardMessage(png(PNG_1X1)).ok);
});

const RUN: RunMetrics = {
  runId: "2026-11-25-a",
  mode: "dpo-st",
  createdAt: "2026-11-25T10:00:00.000Z",
  engine: "onnxruntime",
  device: "cpu",
  engineFallback: null,
  rounds: [{
    round: 1, devAccuracy: 0.3, testAccuracy: 0.348, devPassAtK: 0.5, testPassAtK: 0.612, k: 5, testQuestions: 500, correctSamples: 40, samples: 100, positives: 40, negatives: 60,
    pairs: 30, pseudoLabels: 55, distinctPerQuestion: 1.4, rewardAccuracy: 0.8, rewardMargin: 0.2, tokensPerSecond: 24800, wallMs: 60000, evaluated: true,
  }],
  warnings: [{ id: "loss-zero:2026-11-25-a:1:sft:", kind: "loss-zero", severity: "warning", runId: "2026-11-25-a", round: 1, stage: "sft", text: "Run 2026-11-25-a, round 1, SFT: the loss is ≈0." }],
  steps: [{ round: 1, stage: "dpo", totalSteps: 150, recorded: 2, lastStep: 2, series: { loss: { x: [1, 2], y: [0.69, 0.6] } }, nonFinite: { "rewards/margins": { count: 1, firstStep: 2 } } }],
};
const { steps: _steps, ...SUMMARY } = RUN;

const FROM_HOST: DashboardFromHost[] = [
  { type: "state", state: { runs: [SUMMARY], selected: RUN, status: { running: false, runId: null, round: null, stage: null, step: null, totalSteps: null }, problems: ["Run x is not shown: …"] } satisfies DashboardState },
  { type: "state", state: { runs: [], selected: null, status: { running: true, runId: null, round: null, stage: null, step: null, totalSteps: null }, problems: [] } },
  { type: "steps", runId: RUN.runId, round: 1, stage: "dpo", totalSteps: 150, reset: false, points: [{ step: 3, values: { loss: 0.55, "rewards/chosen": -0.01 } }], warnings: RUN.warnings },
  { type: "status", status: { running: true, runId: RUN.runId, round: 2, stage: "dpo", step: 63, totalSteps: 150 } },
];

test("every host → webview message survives JSON (the webview's cache is what the host sent) and is recognised", () => {
  const kinds = new Set<string>();
  for (const m of FROM_HOST) {
    const wire: unknown = JSON.parse(JSON.stringify(m));
    assert.deepEqual(wire, m);
    assert.ok(isDashboardFromHost(wire), m.type);
    kinds.add(m.type);
  }
  assert.deepEqual([...kinds].sort(), ["state", "status", "steps"]);
  for (const foreign of [null, "state", {}, { type: "ready" }, { type: "setState" }]) assert.equal(isDashboardFromHost(foreign), false, JSON.stringify(foreign));
});
