// The whole path in a real workbench: vsix install, activation by a palette command (the workspace has no
// .selftrain/config.json, so nothing else activates the extension), the engine forked from the installed
// extension, and the notification it leads to. Run with `npm run test:e2e` after scripts/e2e/setup-workbench.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/paths";
import { missingTools, packageExtension, startWorkbench } from "./workbench";

const GSM8K_LINES = [
  { question: "Tom has 3 apples and buys 4 more. How many apples does he have?", answer: "He has 3+4=<<3+4=7>>7 apples.\n#### 7" },
  { question: "A box holds 6 eggs. How many eggs are in 5 boxes?", answer: "There are 6*5=<<6*5=30>>30 eggs.\n#### 30" },
  { question: "Sara had 20 dollars and spent 8. How much is left?", answer: "She has 20-8=<<20-8=12>>12 dollars left.\n#### 12" },
];

test("workbench: Check Dataset File reports the examples and the bad line", { skip: missingTools() ?? false, timeout: 180_000 }, async (t) => {
  const ws = tempDir(t, "sts-e2e-ws-");
  mkdirSync(join(ws, "data"));
  writeFileSync(join(ws, "data/train.jsonl"), [...GSM8K_LINES.map((l) => JSON.stringify(l)), "{ this is not json"].join("\n") + "\n");

  const wb = await startWorkbench({ workspace: ws, vsix: packageExtension() });
  t.after(() => wb.stop());
  try {
    await wb.openFile("train.jsonl");
    await wb.screenshot("smoke-1-opened");
    await wb.runCommand("Self-Training: Check Dataset File");
    const text = await wb.notification(/examples, \d+ bad lines/, 60_000);
    await wb.screenshot("smoke-2-report");
    assert.match(text, /^3 examples, 1 bad lines, 3\/3 calculator annotations correct/);
  } catch (e) {
    await wb.screenshot("smoke-failed").catch(() => undefined);
    throw e;
  }
});
