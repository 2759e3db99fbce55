import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(__dirname, "..", "..");

/** GSM8K beside the project (../shared/data/gsm8k), or where GSM8K_DIR points; null when absent. */
export function gsm8kDir(): string | null {
  const dir = process.env["GSM8K_DIR"] ?? resolve(repoRoot, "..", "shared", "data", "gsm8k");
  return existsSync(join(dir, "train.jsonl")) && existsSync(join(dir, "test.jsonl")) ? dir : null;
}

export const GSM8K_ABSENT = "GSM8K not found beside the project (../shared/data/gsm8k) nor at $GSM8K_DIR: skipped";

/** A fresh temporary folder, removed when the test ends. */
export function tempDir(t: { after: (fn: () => void) => void }, prefix = "sts-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
