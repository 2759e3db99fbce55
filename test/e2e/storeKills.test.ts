import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { replaceJsonl } from "../../src/core/store/jsonl";
import { RunStore } from "../../src/core/store/runStore";
import { metricsContent } from "./fixtures/writeLoopData";
import { repoRoot, tempDir } from "../helpers/paths";

const loop = join(repoRoot, "test", "e2e", "fixtures", "writeLoop.ts");
const KILLS = 8;

/** Starts the write loop, lets it run a random while after it is ready, and kills it with SIGKILL. */
function killMidWrite(mode: "rewrite" | "create", dir: string, maxDelayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", loop, mode, dir], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
    let killed = false;
    child.stdout.on("data", () => {
      if (killed) return;
      killed = true;
      setTimeout(() => child.kill("SIGKILL"), Math.random() * maxDelayMs);
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => (signal === "SIGKILL" ? resolve() : reject(new Error(`write loop ended by itself (code ${code})`))));
  });
}

const text = (records: Record<string, unknown>[]): string => records.map((r) => JSON.stringify(r) + "\n").join("");

test("metrics.jsonl rewritten when a stage restarts: a kill -9 at any moment leaves the old records or the new ones, never fewer", async (t) => {
  const dir = tempDir(t);
  const [a, b] = [text(metricsContent("a")), text(metricsContent("b"))];
  await replaceJsonl(join(dir, "metrics.jsonl"), metricsContent("a"));
  for (let i = 0; i < KILLS; i++) {
    await killMidWrite("rewrite", dir, 400);
    const now = readFileSync(join(dir, "metrics.jsonl"), "utf8");
    assert.ok(now === a || now === b, `after kill ${i + 1}: metrics.jsonl has ${now.length} characters, neither version (${a.length} or ${b.length})`);
  }
});

test("a rewrite that fails part-way leaves the file as it was", async (t) => {
  const file = join(tempDir(t), "metrics.jsonl");
  await replaceJsonl(file, [{ step: 1 }, { step: 2 }]);
  // A record that cannot be written as JSON stops the rewrite after the first one.
  await assert.rejects(replaceJsonl(file, [{ step: 1 }, { bad: 1n }]), /BigInt/);
  assert.equal(readFileSync(file, "utf8"), '{"step":1}\n{"step":2}\n');
});

test("new runs killed at any moment: every run folder listed has a manifest that opens, and status keeps working", async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < KILLS; i++) {
    await killMidWrite("create", dir, 300);
    for (const id of RunStore.list(dir)) {
      const store = await RunStore.open(dir, id);
      assert.equal(store.runId, id);
    }
  }
  assert.ok(RunStore.list(dir).length > KILLS, "the loop created runs");
  // What the kills left (half-made runs in private folders) is cleared by the next writer.
  await RunStore.sweepLeftovers(dir, RunStore.list(dir)[0]!);
  const left = readdirSync(join(dir, "runs")).filter((n) => n.startsWith("."));
  assert.deepEqual(left, []);
  assert.ok(existsSync(join(dir, "runs", RunStore.list(dir)[0]!, "manifest.json")));
});
