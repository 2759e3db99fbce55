import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { RunStore } from "../../../src/core/store/runStore";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { JsonlWriter, readJsonl } from "../../../src/core/store/jsonl";
import { writeJsonAtomic } from "../../../src/core/store/atomic";
import { tempDir } from "../../helpers/paths";

const folder = (path: string): { message: string } => ({ message: `${path} is a folder, not a file: remove it (or move it elsewhere), then run the command again` });

test("a folder where a store file belongs is named, not a bare EISDIR", async (t) => {
  const root = join(tempDir(t), ".selftrain");
  const store = await RunStore.create(root, { runId: "r1", mode: "dpo-st" });

  const reviews = new ReviewLog(root);
  mkdirSync(reviews.path);
  assert.throws(() => reviews.entries(), folder(reviews.path));
  assert.throws(() => reviews.append({ kind: "mark", verdict: "wrong", hash: "h1" }), folder(reviews.path));

  const metrics = store.path(1, "metrics.jsonl");
  mkdirSync(metrics, { recursive: true });
  await assert.rejects(readJsonl(metrics), folder(metrics));
  await assert.rejects(JsonlWriter.open(metrics), folder(metrics));

  const config = join(store.roundDir(1), "selftrain-config.json");
  mkdirSync(config);
  await assert.rejects(writeJsonAtomic(config, {}), folder(config));

  const other = await RunStore.create(root, { runId: "r2", mode: "dpo-st" });
  const manifest = other.manifestPath;
  rmSync(manifest);
  mkdirSync(manifest);
  await assert.rejects(RunStore.open(root, "r2"), folder(manifest));
});
