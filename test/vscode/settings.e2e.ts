// The settings file explains itself, and the dashboard says first when the model cannot start (issue 28), in a real
// workbench: a typo in .selftrain/config.json is a row in the explorer that opens the file at the key, the editor
// explains a setting on hover from the contributed JSON schema, and a round where no sample was right leads the
// dashboard's warnings. Screenshots go to .test-artifacts/settings-*.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FrameLocator } from "playwright-core";
import { tempDir } from "../helpers/paths";
import { tinyWorkspace } from "../helpers/workspace";
import { missingTools, packageExtension, startWorkbench, type Workbench } from "./workbench";
import { RunStore } from "../../src/core/store/runStore";

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dashboardFrame(wb: Workbench): FrameLocator {
  return wb.page.frameLocator('iframe.webview.ready[title="Self-Training Metrics"], iframe.webview.ready').last().frameLocator("iframe#active-frame");
}

test("workbench: a typo in config.json is an explorer row that opens the file at the key; the schema explains a setting on hover; 0 right samples lead the dashboard's warnings", { skip: missingTools() ?? false, timeout: 300_000 }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t, "sts-e2e-settings-"));
  const cfg = join(ws, ".selftrain", "config.json");
  const config = JSON.parse(readFileSync(cfg, "utf8")) as { sampling: Record<string, unknown> };
  config.sampling["maxNewToken"] = config.sampling["maxNewTokens"];
  delete config.sampling["maxNewTokens"];
  writeFileSync(cfg, JSON.stringify(config, null, 2));
  // A round whose samples were all wrong, as the runner records it in the manifest.
  const store = await RunStore.create(join(ws, ".selftrain"), { mode: "dpo-st" });
  await store.setStage(0, "warmup", { state: "done" });
  await store.setStage(1, "sample-dpo", { state: "done", counts: { samples: 320, correct: 0 } });
  await store.setStage(1, "pairs", { state: "done", counts: { pairs: 0, positives: 0, negatives: 320 } });
  await store.setStage(1, "sample-sft", { state: "done", counts: { samples: 240, correct: 0 } });
  await store.setStage(1, "pseudo-labels", { state: "done", counts: { kept: 0, questions: 0 } });

  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  const { page } = wb;
  try {
    // 1. The typo is said in place, and the rows that do not need that setting stay.
    await page.locator('.activitybar [aria-label^="Self-Training"]').first().click();
    const problem = page.getByRole("treeitem", { name: /config\.json: sampling\.maxNewToken is not a setting; did you mean maxNewTokens\?/ }).first();
    await problem.waitFor({ timeout: 30_000 });
    await page.getByRole("treeitem", { name: /^Data/ }).first().waitFor({ timeout: 10_000 });
    await wb.screenshot("settings-1-typo-in-the-explorer");
    // Its action opens config.json with the key selected.
    await problem.click();
    const editor = page.locator(".editor-instance .monaco-editor").first();
    await editor.waitFor({ timeout: 20_000 });
    await page.locator(".tab.active").filter({ hasText: "config.json" }).waitFor({ timeout: 20_000 });
    await settle(500);
    const selected = await page.evaluate("(() => { const s = window.getSelection(); return s ? s.toString() : ''; })()");
    const status = (await page.locator(".statusbar-item").filter({ hasText: /Ln \d+, Col \d+/ }).first().textContent()) ?? "";
    const keyLine = readFileSync(cfg, "utf8").split("\n").findIndex((l) => l.includes('"maxNewToken"')) + 1;
    assert.match(status, new RegExp(`Ln ${keyLine}, Col \\d+ \\(11 selected\\)`), `the cursor is not on the key "maxNewToken" (line ${keyLine}): ${status} ${String(selected)}`);
    await wb.screenshot("settings-2-opened-at-the-key");

    // 2. The schema explains a setting on hover: the key's meaning, range and default.
    const key = page.locator(".view-line span").filter({ hasText: /^"dpoSamples"$/ }).first();
    await key.hover();
    const hover = page.locator(".monaco-hover").filter({ hasText: /Rationales sampled per question for the DPO step/ }).first();
    await hover.waitFor({ timeout: 20_000 });
    assert.match((await hover.textContent()) ?? "", /Default: \d+/);
    await wb.screenshot("settings-3-schema-hover");

    // 3. The dashboard leads with the round where nothing was right.
    await wb.runCommand("Self-Training: Open Metrics Dashboard");
    const dash = dashboardFrame(wb);
    const first = dash.locator('[data-testid="warning"]').first();
    await first.waitFor({ timeout: 30_000 });
    assert.match((await first.textContent()) ?? "", /0 of 560 samples were right and there are 0 pseudo-labels — the model cannot start/);
    await wb.screenshot("settings-4-no-right-samples-warning");
  } catch (e) {
    await wb.screenshot("settings-failed").catch(() => undefined);
    throw e;
  }
});
