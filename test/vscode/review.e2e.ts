// The review keeps its place and tells the truth (issue 16 B), in a real workbench on a round written the way the
// runner writes it: j/k open a question at its top; a sample clicked in the explorer is scrolled into view; a pair
// whose chosen side is marked wrong says the next round drops it; a swap is one pair; a hand-written rationale with
// wrong arithmetic is held until confirmed; the explorer shows the SFT step's samples and the pseudo-labels, with
// the review's own words for a question. Screenshots go to .test-artifacts/review-*.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FrameLocator } from "playwright-core";
import { tempDir } from "../helpers/paths";
import { tinyWorkspace } from "../helpers/workspace";
import { missingTools, packageExtension, startWorkbench, type Workbench } from "./workbench";
import { RunStore } from "../../src/core/store/runStore";
import { contentHash } from "../../src/core/store/hash";
import { saveCheckpoint } from "../../src/core/model/checkpoint";
import { tinyConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { trainBpe } from "../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../src/core/tokenizer/tokenizer";
import type { PairRecord, PseudoLabelRecord, ReviewEntry, SampleRecord, StageName } from "../../src/shared/runTypes";

function webviewFrame(wb: Workbench): FrameLocator {
  return wb.page.frameLocator('iframe.webview.ready[title="Rationale Review"], iframe.webview.ready').last().frameLocator("iframe#active-frame");
}

function reviews(ws: string): ReviewEntry[] {
  const file = join(ws, ".selftrain", "reviews.jsonl");
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as ReviewEntry) : [];
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Round 1 of a DPO run on the workspace's first four training questions: 8 DPO-step and 3 SFT-step samples each. */
async function writeRound(ws: string): Promise<{ runId: string; dpo: SampleRecord[]; sft: SampleRecord[]; pairs: PairRecord[] }> {
  const lines = readFileSync(join(ws, "data", "train.jsonl"), "utf8").trim().split("\n").slice(0, 4).map((l) => JSON.parse(l) as { question: string; answer: string });
  const store = await RunStore.create(join(ws, ".selftrain"), { mode: "dpo-st" });
  await store.setStage(0, "warmup", { state: "done" });
  mkdirSync(store.roundDir(1), { recursive: true });
  const sample = (q: number, i: number, stage: "dpo" | "sft", right: boolean): SampleRecord => {
    const gold = Number(/####\s*(-?[\d.]+)/.exec(lines[q]!.answer)![1]);
    const answer = right ? gold : gold + 1 + i;
    // Long enough that eight of them do not fit on one screen.
    const rationale = [`${stage === "dpo" ? "Plan" : "Second try"} ${i + 1}: read the question carefully.`, "Write down what is known.", `Work it out step by step: <<${answer}-0=${answer}>>${answer}.`, "Check the result once more.", `#### ${answer}`].join("\n");
    return { hash: contentHash(lines[q]!.question, rationale), questionId: `train:${q + 1}`, question: lines[q]!.question, rationale, answer, gold, correct: right, logProb: -20 - i, calculatorCalls: [], arithmeticErrors: 0, finished: true, round: 1, index: i };
  };
  // Questions 1 and 4 mixed (samples 1-3 right), question 2 mixed with one right sample, question 3 all wrong.
  const rightOf = (q: number, i: number) => (q === 0 || q === 3 ? i < 3 : q === 1 ? i === 0 : false);
  const dpo = [0, 1, 2, 3].flatMap((q) => Array.from({ length: 8 }, (_, i) => sample(q, i, "dpo", rightOf(q, i))));
  const sft = [0, 1, 2, 3].flatMap((q) => Array.from({ length: 3 }, (_, i) => sample(q, i, "sft", q < 2 && i === 0)));
  const pair = (c: SampleRecord, r: SampleRecord): PairRecord => ({ questionId: c.questionId, question: c.question, chosenHash: c.hash, rejectedHash: r.hash, chosen: c.rationale, rejected: r.rationale, similarity: 0.6, source: "automatic", round: 1 });
  const pairs = [pair(dpo[0]!, dpo[5]!), pair(dpo[1]!, dpo[6]!), pair(dpo[8]!, dpo[13]!), pair(dpo[24]!, dpo[29]!)];
  const labels: PseudoLabelRecord[] = [sft[0]!, sft[3]!].map((s) => ({ questionId: s.questionId, question: s.question, hash: s.hash, rationale: s.rationale, source: "automatic", round: 1 }));
  const jsonl = (records: object[]) => records.map((r) => JSON.stringify(r)).join("\n") + "\n";
  writeFileSync(store.path(1, "samples-dpo.jsonl"), jsonl(dpo));
  writeFileSync(store.path(1, "samples-sft.jsonl"), jsonl(sft));
  writeFileSync(store.path(1, "pairs.jsonl"), jsonl(pairs));
  writeFileSync(store.path(1, "pseudo-labels.jsonl"), jsonl(labels));
  const counts: Partial<Record<StageName, Record<string, number>>> = { pairs: { pairs: pairs.length }, "pseudo-labels": { kept: labels.length } };
  for (const stage of ["sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"] as const) {
    await store.setStage(1, stage, { state: "done", ...(counts[stage] ? { counts: counts[stage] } : {}) });
  }
  return { runId: store.manifest.runId, dpo, sft, pairs };
}

test("workbench: the review keeps its place and tells the truth: scrolling, dropped and swapped pairs, a held hand-written rationale, the explorer's SFT-step samples and pseudo-labels", { skip: missingTools() ?? false, timeout: 300_000 }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t, "sts-e2e-review-"));
  const { dpo, pairs } = await writeRound(ws);
  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  const { page } = wb;
  const review = webviewFrame(wb);
  const scrollTop = () => review.locator("body").evaluate((b) => (b.ownerDocument.scrollingElement ?? b.ownerDocument.documentElement).scrollTop);
  try {
    await wb.runCommand("Self-Training: Review Rationales");
    await review.locator('[data-testid="question"][data-question-id="train:1"]').waitFor({ timeout: 30_000 });
    await review.locator('[data-testid="position"]').filter({ hasText: /^Q 1 of 3/ }).waitFor({ timeout: 30_000 });
    // The header counts what the review shows, per sampling step.
    assert.match((await review.locator('[data-testid="question"] h2').textContent()) ?? "", /DPO step 3\/8 right · SFT step 1\/3 right/);

    // B2: scrolled to the bottom of question 1, j opens question 2 at its top.
    await review.locator("body").evaluate((b) => b.ownerDocument.defaultView!.scrollTo(0, 100_000));
    assert.ok((await scrollTop()) > 200, "question 1 is taller than the panel");
    await review.locator('[data-testid="question"] h2').click();
    await page.keyboard.press("j");
    await review.locator('[data-testid="question"][data-question-id="train:2"]').waitFor({ timeout: 10_000 });
    await settle(300);
    assert.equal(await scrollTop(), 0, "the next question did not open at its top");
    await wb.screenshot("review-1-next-question-at-top");
    // B1: marking question 2's only right sample wrong moves it out of "Mixed answers"; Next goes on to question 4.
    await review.locator(`[data-testid="sample"][data-hash="${dpo[8]!.hash}"] [data-action="wrong"]`).click();
    await review.locator('[data-testid="position"]').filter({ hasText: /no longer in mixed answers/ }).waitFor({ timeout: 10_000 });
    await wb.screenshot("review-1b-question-left-the-filter");
    await review.locator('[data-action="next"]').click();
    await review.locator('[data-testid="question"][data-question-id="train:4"]').waitFor({ timeout: 10_000 });
    await review.locator('[data-testid="position"]').filter({ hasText: /^Q 2 of 2 · mixed answers/ }).waitFor({ timeout: 10_000 });
    await page.keyboard.press("k");
    await review.locator('[data-testid="question"][data-question-id="train:1"]').waitFor({ timeout: 10_000 });
    await page.keyboard.press("k");
    await review.locator('[data-testid="question"][data-question-id="train:1"]').waitFor({ timeout: 10_000 });

    // B5: mark the chosen side of pair 1 wrong: the pair says the next round drops it.
    await review.locator(`[data-testid="sample"][data-hash="${dpo[0]!.hash}"] [data-action="wrong"]`).click();
    const first = review.locator(`[data-testid="pair"][data-chosen="${pairs[0]!.chosenHash}"]`);
    await first.locator('[data-testid="next-round"]').filter({ hasText: /dropped next round: you marked its chosen side, sample 1, wrong/ }).waitFor({ timeout: 10_000 });
    assert.equal(await first.getAttribute("data-status"), "dropped");
    // A swap shows as one pair, the way round the next round builds it.
    await review.locator(`[data-testid="pair"][data-chosen="${pairs[1]!.chosenHash}"] [data-action="swap"]`).click();
    await review.locator(`[data-testid="pair"][data-chosen="${pairs[1]!.rejectedHash}"][data-status="swapped"]`).waitFor({ timeout: 10_000 });
    const both = [pairs[1]!.chosenHash, pairs[1]!.rejectedHash];
    const cards = await review.locator('[data-testid="pair"]').evaluateAll((els) => els.map((e) => [e.getAttribute("data-chosen"), e.getAttribute("data-rejected")]));
    assert.equal(cards.filter(([c, r]) => both.includes(c!) && both.includes(r!)).length, 1, `the swapped pair shows once: ${JSON.stringify(cards)}`);
    await review.locator(`[data-testid="pair"][data-status="swapped"]`).scrollIntoViewIfNeeded();
    await wb.screenshot("review-2-dropped-and-swapped-pairs");

    // B3: a hand-written rationale with wrong arithmetic is recorded but held, and used only once confirmed.
    await review.locator('[data-testid="gold"] [data-action="edit"]').click();
    await page.locator('.tabs-container .tab[aria-label^="train_1.txt"]').waitFor({ timeout: 20_000 });
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("Control+A");
    const gold = dpo[0]!.gold;
    await page.keyboard.insertText(`Half of the ${2 * gold} is <<${2 * gold}/2=${gold + 1}>>${gold + 1}.\n#### ${gold}\n`);
    await page.keyboard.press("Control+S");
    const warning = await wb.notification(/Held, not used for training/, 20_000);
    assert.match(warning, new RegExp(`${2 * gold}/2 is ${gold}, not ${gold + 1}`));
    const written = review.locator('[data-testid="written"]');
    await written.waitFor({ timeout: 10_000 });
    assert.equal(await written.getAttribute("data-confirmed"), "false");
    const added = reviews(ws).filter((e) => e.kind === "add-rationale");
    assert.equal(added.length, 1);
    assert.deepEqual(added[0]!.kind === "add-rationale" && added[0]!.unconfirmed, [`${2 * gold}/2 is ${gold}, not ${gold + 1}`]);
    await written.scrollIntoViewIfNeeded();
    await wb.screenshot("review-3-held-rationale");
    await written.locator('[data-action="confirm"]').click();
    await review.locator('[data-testid="written"][data-confirmed="true"]').waitFor({ timeout: 10_000 });
    const addedHash = added[0]!.kind === "add-rationale" ? added[0]!.hash : "";
    assert.ok(reviews(ws).some((e) => e.kind === "confirm-rationale" && e.hash === addedHash), "the confirmation is in reviews.jsonl");

    // B4: the explorer shows the pseudo-labels and the SFT step's samples, with the review's words for a question.
    await page.locator('.activitybar [aria-label^="Self-Training"]').first().click();
    const row = (name: RegExp) => page.getByRole("treeitem", { name }).first();
    await row(/^Round 1/).click();
    await row(/^Pseudo-labels \(2 in 2 questions\)/).waitFor({ timeout: 15_000 });
    await row(/^Decided by you \(2\) also in the groups above/).waitFor();
    await row(/^Mixed \(2\)/).click();
    const q1 = row(/^Q train:1 /);
    await q1.waitFor();
    // Sample 1 was marked wrong above: 2 of 8 right now, in the explorer as in the review's header.
    assert.match((await q1.getAttribute("aria-label")) ?? "", /DPO step 2\/8 right · SFT step 1\/3 right · 1 pseudo-label · you decided/);
    assert.match((await review.locator('[data-testid="question"] h2').textContent()) ?? "", /· DPO step 2\/8 right · SFT step 1\/3 right$/);
    await q1.click();
    await row(/SFT-step sample 1 .*pseudo-label/).waitFor({ timeout: 10_000 });
    await wb.screenshot("review-4-explorer-sft-samples-and-pseudo-labels");

    // B2: a sample clicked in the explorer is scrolled into view in the review.
    await row(/sample 8 /).click();
    const eighth = review.locator(`[data-testid="sample"][data-hash="${dpo[7]!.hash}"]`);
    await eighth.waitFor({ timeout: 10_000 });
    await settle(500);
    const seen = await eighth.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const view = el.ownerDocument.defaultView!;
      const bar = el.ownerDocument.querySelector("header.bar")!.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, height: view.innerHeight, barBottom: bar.bottom, focused: el.ownerDocument.activeElement === el };
    });
    assert.ok(seen.top >= seen.barBottom - 1 && seen.top < seen.height, `sample 8 is not in view below the bar: ${JSON.stringify(seen)}`);
    assert.ok(seen.focused, "sample 8 has the focus");
    await wb.screenshot("review-5-explorer-sample-in-view");

    // A typo elsewhere in config.json (the explorer shows it in place) does not stop the review: the next question
    // still opens (it read config.json strictly for the data files and failed).
    const cfg = join(ws, ".selftrain", "config.json");
    const config = JSON.parse(readFileSync(cfg, "utf8")) as { sampling: Record<string, unknown> };
    config.sampling["maxNewToken"] = 64;
    writeFileSync(cfg, JSON.stringify(config, null, 2));
    await review.locator('[data-testid="question"] h2').click();
    await page.keyboard.press("j");
    await review.locator('[data-testid="question"]:not([data-question-id="train:1"])').waitFor({ timeout: 10_000 });
    await wb.screenshot("review-6-next-question-with-a-typo-in-config");
  } catch (e) {
    await wb.screenshot("review-failed").catch(() => undefined);
    const rows = await page.getByRole("treeitem").evaluateAll((els) => els.map((el) => el.getAttribute("aria-label"))).catch(() => []);
    t.diagnostic(`explorer rows: ${JSON.stringify(rows)}`);
    throw e;
  }
});

test("workbench: a new workspace's empty states say what to do next: after Initialize, Start round with how long it takes; an empty review and dashboard offer to start one", { skip: missingTools() ?? false, timeout: 300_000 }, async (t) => {
  const ws = tempDir(t, "sts-e2e-fresh-");
  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  const { page } = wb;
  const row = (name: RegExp) => page.getByRole("treeitem", { name }).first();
  try {
    await page.locator('.activitybar [aria-label^="Self-Training"]').first().click();
    await page.getByRole("button", { name: "Initialize Workspace" }).first().waitFor({ timeout: 30_000 });
    await wb.runCommand("Self-Training: Initialize Workspace", "Initialize Self-Training");
    const input = page.locator(".quick-input-widget input");
    await input.pressSequentially("synthetic");
    await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "synthetic" }).first().waitFor();
    await page.keyboard.press("Enter");
    // Then the model, the second question.
    await page.locator(".quick-input-widget .quick-input-title").filter({ hasText: "the model" }).waitFor({ timeout: 20_000 });
    await input.pressSequentially("New small model");
    await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "New small model" }).first().waitFor();
    await page.keyboard.press("Enter");
    const told = await wb.notification(/^Workspace ready\. Next: ▶ Start round/, 60_000);
    assert.match(told, /Start round \(the warm-up and round 1\), about \d+ (minutes|seconds|hours) on this machine/);
    const next = row(/^Next: ▶ Start round/);
    await next.waitFor({ timeout: 15_000 });
    assert.match((await next.getAttribute("aria-label")) ?? "", /Start round.*about \d+ (minutes|seconds|hours)/);
    await wb.screenshot("empty-1-after-initialize");

    await wb.runCommand("Self-Training: Review Rationales");
    const review = webviewFrame(wb);
    await review.locator('[data-testid="empty"]').filter({ hasText: /No rounds to review yet/ }).waitFor({ timeout: 30_000 });
    await review.locator('[data-action="start-round"]').waitFor();
    await wb.screenshot("empty-2-review");
    await wb.runCommand("Self-Training: Open Metrics Dashboard");
    const dash = wb.page.frameLocator('iframe.webview.ready[title="Self-Training Metrics"], iframe.webview.ready').last().frameLocator("iframe#active-frame");
    await dash.locator(".empty").filter({ hasText: /No metrics yet/ }).waitFor({ timeout: 30_000 });
    await wb.screenshot("empty-3-dashboard");
    // The dashboard's button starts the round.
    await dash.locator('[data-action="start-round"]').click();
    await wb.notification(/Round 0 · /, 60_000);
    await page.locator(".notifications-toasts").getByRole("button", { name: "Cancel" }).first().click();
    await wb.notification(/^Stopped\. Finished stages are kept/, 30_000);
  } catch (e) {
    await wb.screenshot("empty-failed").catch(() => undefined);
    throw e;
  }
});

test("workbench: Initialize → Use a model folder… shows what the folder holds and the memory verdict before writing, then the explorer shows the base model", { skip: missingTools() ?? false, timeout: 300_000 }, async (t) => {
  const ws = tempDir(t, "sts-e2e-model-");
  const modelDir = join(ws, "models", "tiny-llama");
  const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7"], { vocabSize: 270 }));
  const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 });
  saveCheckpoint(modelDir, { config, weights: initWeights(config, 3), tokenizer });
  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  const { page } = wb;
  try {
    await page.locator('.activitybar [aria-label^="Self-Training"]').first().click();
    await wb.runCommand("Self-Training: Initialize Workspace", "Initialize Self-Training");
    const input = page.locator(".quick-input-widget input");
    // The data first (1 of 2), then the model (2 of 2).
    await input.pressSequentially("synthetic");
    await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "synthetic" }).first().waitFor();
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget .quick-input-title").filter({ hasText: "the model" }).waitFor({ timeout: 20_000 });
    await input.pressSequentially("model folder");
    await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "Use a model folder" }).first().waitFor();
    await page.keyboard.press("Enter");
    // code-server's own folder dialog: a path box in the quick input; the title bar's button accepts.
    await page.locator(".quick-input-widget").filter({ hasText: /Model folder/ }).waitFor({ timeout: 20_000 });
    // The dialog fills in its starting folder itself, a moment after it opens: replace it only once it is there.
    for (let i = 0; i < 100 && !(await input.inputValue()).startsWith("/"); i++) await settle(100);
    await settle(300);
    await input.fill("");
    await input.pressSequentially(modelDir + "/", { delay: 20 });
    assert.equal(await input.inputValue(), modelDir + "/");
    // A folder dialog lists sub-folders only: the model folder has none, so ".." alone once it is inside.
    await settle(1000);
    await page.locator(".quick-input-widget .monaco-button, .quick-input-widget .quick-input-action a").filter({ hasText: "Inspect" }).first().click();
    const dialog = page.locator(".monaco-dialog-box").filter({ hasText: /llama, \d+K parameters: fits this machine/ });
    await dialog.waitFor({ timeout: 20_000 });
    const text = (await dialog.textContent()) ?? "";
    assert.match(text, /weights {5}F32, one file/);
    assert.match(text, /verdict: fits/);
    assert.ok(!existsSync(join(ws, ".selftrain")), "something was written before the person agreed");
    await wb.screenshot("model-1-inspect-before-writing");
    await dialog.locator(".monaco-button").filter({ hasText: "Use This Model" }).click();
    await wb.notification(/^Workspace ready/, 60_000);
    assert.equal(JSON.parse(readFileSync(join(ws, ".selftrain", "config.json"), "utf8")).model.init, join("models", "tiny-llama"));
    const model = page.getByRole("treeitem", { name: /^Model llama · \d+K · F32 · tiny-llama/ }).first();
    await model.waitFor({ timeout: 15_000 });
    await wb.screenshot("model-2-explorer-base-model");
  } catch (e) {
    await wb.screenshot("model-failed").catch(() => undefined);
    throw e;
  }
});
