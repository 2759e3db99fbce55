// A newcomer's files in a real workbench: Initialize Workspace on a finished workspace asks before it writes
// anything and never overwrites data files; Run Warm-up SFT on a finished run asks before it starts a new one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir, configPath } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { tempDir } from "../helpers/paths";
import { missingTools, packageExtension, startWorkbench } from "./workbench";

async function chooseInQuickPick(page: Page, text: string, title?: string): Promise<void> {
  const input = page.locator(".quick-input-widget input");
  if (title) await page.locator(".quick-input-widget .quick-input-title").filter({ hasText: title }).waitFor({ timeout: 20_000 });
  await input.waitFor();
  await input.pressSequentially(text);
  await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: text }).first().waitFor();
  await page.keyboard.press("Enter");
}

async function dialog(page: Page, text: RegExp): Promise<void> {
  await page.locator(".monaco-dialog-box").filter({ hasText: text }).waitFor({ timeout: 30_000 });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("workbench: Initialize on a finished workspace writes nothing on Cancel and never overwrites data; Warm-up asks before a new run", { skip: missingTools() ?? false, timeout: 240_000 }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t, "sts-e2e-ws-"));
  await runRound({ workspace: ws, round: 0, events: recorder(), shouldStop: () => false });
  const files = ["data/train.jsonl", "data/test.jsonl", ".selftrain/config.json"].map((f) => join(ws, f));
  const before = files.map((f) => readFileSync(f, "utf8"));

  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  try {
    await wb.runCommand("Self-Training: Initialize Workspace", "Initialize Self-Training");
    await chooseInQuickPick(wb.page, "synthetic");
    // Initialize asks the data, then the model, then whether to replace the settings.
    await chooseInQuickPick(wb.page, "New small model", "the model");
    await dialog(wb.page, /Replace the existing \.selftrain\/config\.json\?/);
    await wb.screenshot("data-safety-1-replace-question");
    await wb.page.keyboard.press("Escape");
    await wb.page.locator(".monaco-dialog-box").waitFor({ state: "hidden" });
    await settle(1500);
    assert.deepEqual(files.map((f) => readFileSync(f, "utf8")), before, "Cancel changed the workspace's files");
    assert.ok(!existsSync(join(ws, "data-2")), "Cancel wrote a data set");

    await wb.runCommand("Self-Training: Initialize Workspace", "Initialize Self-Training");
    await chooseInQuickPick(wb.page, "synthetic");
    await chooseInQuickPick(wb.page, "New small model", "the model");
    await dialog(wb.page, /Replace the existing/);
    await wb.page.locator(".monaco-dialog-box .monaco-button").filter({ hasText: "Replace" }).click();
    for (let i = 0; i < 100 && readFileSync(configPath(ws), "utf8") === before[2]; i++) await settle(200);
    assert.deepEqual(files.slice(0, 2).map((f) => readFileSync(f, "utf8")), before.slice(0, 2), "the existing data set was overwritten");
    assert.equal(JSON.parse(readFileSync(configPath(ws), "utf8")).data.train, "data-2/train.jsonl");
    assert.ok(existsSync(join(ws, "data-2", "test.jsonl")));
    // Initialize ends by opening config.json beside the workbench and saying so: wait for that, or the editor it
    // opens takes the focus from the command palette opened next (the command's name was typed into config.json).
    await wb.notification(/^Workspace ready/, 60_000);
    await settle(1000);

    await wb.runCommand("Self-Training: Run Warm-up SFT");
    await dialog(wb.page, /Start a new run\? The current run \S+ has 0 finished rounds after its warm-up\./);
    await wb.screenshot("data-safety-2-new-run-question");
    await wb.page.keyboard.press("Escape");
    await settle(3000);
    assert.equal(RunStore.list(selftrainDir(ws)).length, 1, "a new run was started without asking");
  } catch (e) {
    await wb.screenshot("data-safety-failed").catch(() => undefined);
    throw e;
  }
});
