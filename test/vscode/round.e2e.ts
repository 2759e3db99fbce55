// The end-to-end path in a real workbench: a workspace with a tiny config, "Start Self-Training Round"
// from the command palette (warm-up, then round 1, in the worker process), and the Dataset Explorer showing
// the round, its question groups, a question and its samples. Screenshots go to .test-artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/paths";
import { tinyWorkspace } from "../helpers/workspace";
import { spawnSync } from "node:child_process";
import { artifactsDir, missingTools, packageExtension, startWorkbench } from "./workbench";

test("workbench: Start Self-Training Round, then the explorer shows the round and its samples", { skip: missingTools() ?? false, timeout: 400_000 }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t, "sts-e2e-round-"));
  // Batches of 8: evaluation counts its 6 dev and 6 test questions in two steps each, so its ETA shows.
  const cfg = join(ws, ".selftrain", "config.json");
  const config = JSON.parse(readFileSync(cfg, "utf8")) as { sampling: Record<string, unknown> };
  config.sampling["batchSize"] = 8;
  writeFileSync(cfg, JSON.stringify(config, null, 2));
  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  const { page } = wb;
  const row = (name: RegExp) => page.getByRole("treeitem", { name }).first();
  try {
    await page.locator('.activitybar [aria-label^="Self-Training"]').first().click();
    await row(/^Data/).waitFor({ timeout: 30_000 });
    await wb.screenshot("round-1-explorer-before");
    assert.match((await row(/^Data/).getAttribute("aria-label")) ?? "", /38 train · 6 dev · 6 test/);
    // Start, then Cancel from the progress notification: it stops, and says the run resumes.
    await wb.runCommand("Self-Training: Start Self-Training Round");
    await wb.notification(/Round \d+ · /, 60_000);
    // While it runs: ■ Stop in the explorer's title bar, ▶ greyed out.
    await page.locator('.pane-header .actions .action-label[aria-label="Stop"], .title-actions .action-label[aria-label="Stop"]').first().waitFor({ timeout: 10_000 });
    const start = page.locator('.action-label[aria-label="Start Self-Training Round"]').first();
    assert.equal(await start.getAttribute("aria-disabled"), "true", "▶ is not disabled while a round runs");
    await wb.screenshot("round-2-progress");
    await page.locator(".notifications-toasts").getByRole("button", { name: "Cancel" }).first().click();
    await wb.notification(/^Stopped\. Finished stages are kept/, 30_000);
    // Started again, then the worker process is killed: the editor survives and says so.
    await wb.runCommand("Self-Training: Start Self-Training Round");
    await wb.notification(/Round \d+ · /, 60_000);
    const killed = spawnSync("pkill", ["-9", "-f", "self-training-studio[^ ]*/dist/worker\\.js"]);
    assert.equal(killed.status, 0, "no worker process to kill");
    await wb.notification(/The Self-Training worker process was stopped by SIGKILL/, 30_000);
    await wb.screenshot("round-2b-engine-crash");
    // Started once more, a fresh engine resumes and finishes the warm-up and round 1. Every text the progress
    // notification shows is recorded as it changes (issue 28: it says what happens from the first second, follows
    // each stage, names the split it evaluates with an ETA, and the end says what the round changed).
    // (A string: this project's TypeScript has no DOM types; it runs in the workbench's page.)
    await page.evaluate(`(() => {
      const seen = (window.stsSeen = []);
      new MutationObserver(() => {
        for (const el of document.querySelectorAll(".notification-list-item-message")) {
          const text = el.textContent || "";
          if (text && !seen.includes(text)) seen.push(text);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    })()`);
    await wb.runCommand("Self-Training: Start Self-Training Round");
    await wb.notification(/Evaluation \d+\/\d+ (dev|test) questions · ETA/, 300_000).then(() => wb.screenshot("round-2c-evaluation-eta"), () => undefined);
    const done = await wb.notification(/round 1 finished/, 300_000);
    assert.match(done, /^Run \d{4}-\d{2}-\d{2}-[a-z]+: round 1 finished: (test|dev) accuracy \d+\.\d% → \d+\.\d% \([+−]\d+\.\d points\)/);
    await wb.screenshot("round-2d-finished-with-result");
    const seen = (await page.evaluate("window.stsSeen")) as string[];
    t.diagnostic(`progress notification texts:\n${seen.join("\n")}`);
    const first = (re: RegExp): number => seen.findIndex((x) => re.test(x));
    for (const re of [/loading the model and building the engine/, /Round 1 · Sampling for DPO/, /Round 1 · DPO/, /Round 1 · SFT/, /Round 1 · Evaluation/, /Evaluation \d+\/\d+ (dev|test) questions · ETA/]) {
      assert.ok(first(re) >= 0, `the notification never said ${re}:\n${seen.join("\n")}`);
    }
    assert.ok(first(/Round 1 · Sampling for DPO/) < first(/Round 1 · DPO/) && first(/Round 1 · DPO/) < first(/Round 1 · SFT/) && first(/Round 1 · SFT/) < first(/Round 1 · Evaluation/), `stages out of order:\n${seen.join("\n")}`);
    await row(/^Round 1/).click();
    const group = row(/^(Mixed|All wrong|All right) \([1-9][\d,]*\)/);
    await group.click();
    await row(/^Q /).click();
    await row(/sample 1/).waitFor({ timeout: 30_000 });
    await wb.screenshot("round-3-explorer-samples");
    const labels = await page.getByRole("treeitem").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label") ?? ""));
    assert.ok(labels.some((l) => /^Round 0/.test(l)), labels.join(" | "));
    assert.ok(labels.some((l) => /^Round 1 .*pairs/.test(l) || /^Round 1/.test(l)), labels.join(" | "));
    assert.ok(labels.filter((l) => /sample \d/.test(l)).length >= 4, labels.join(" | "));
    assert.ok(labels.some((l) => /#### /.test(l)), "samples show their answers");
    // Activation time, as the extension logs it (the logs are copied out when the workbench stops).
    await wb.stop();
    const logs = spawnSync("grep", ["-rhoE", "activated in [0-9.]+ ms", artifactsDir], { encoding: "utf8" }).stdout.trim().split("\n");
    t.diagnostic(`extension ${logs.at(-1) ?? "activation time not found"}`);
    // The packaged extension loads onnxruntime-node from its .vsix, and "auto" picks it here.
    const engine = spawnSync("grep", ["-rhoE", "auto: ONNX Runtime[^)]*\\)", artifactsDir], { encoding: "utf8" }).stdout.trim();
    assert.ok(engine, "the engine log does not say that auto chose ONNX Runtime");
    t.diagnostic(engine.split("\n")[0]!);
  } catch (e) {
    await wb.screenshot("round-failed").catch(() => undefined);
    throw e;
  }
});
