// config.json's paths (issue 28): a data file or model folder inside the workspace is stored relative to it, one
// outside it absolute (never "../../../…"), and every reader takes both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveStored, storedPath } from "../../../src/core/selftrain/storedPath";
import { configPath, initWorkspace, readWorkspaceConfig } from "../../../src/core/selftrain/workspace";
import { loadRunData } from "../../../src/core/selftrain/runData";
import { tempDir } from "../../helpers/paths";

test("storedPath: relative inside the workspace, absolute outside it, and resolveStored gives back the file", () => {
  assert.equal(storedPath("/home/ana/ws", "/home/ana/ws/data/train.jsonl"), join("data", "train.jsonl"));
  assert.equal(storedPath("/home/ana/ws", "/home/ana/gsm8k/train.jsonl"), "/home/ana/gsm8k/train.jsonl");
  assert.equal(storedPath("/home/ana/ws/", "/srv/data/train.jsonl"), "/srv/data/train.jsonl");
  // A name that starts with two dots is inside; the workspace's parent and the workspace itself are not.
  assert.equal(storedPath("/home/ana/ws", "/home/ana/ws/..data/train.jsonl"), join("..data", "train.jsonl"));
  assert.equal(storedPath("/home/ana/ws", "/home/ana"), "/home/ana");
  assert.equal(storedPath("/home/ana/ws", "/home/ana/ws"), "/home/ana/ws");
  // A relative path is already relative to the workspace (the demo passes "data/train.jsonl").
  assert.equal(storedPath("/home/ana/ws", "data/train.jsonl"), join("data", "train.jsonl"));
  for (const file of ["/home/ana/ws/data/train.jsonl", "/home/ana/gsm8k/train.jsonl"]) {
    assert.equal(resolveStored("/home/ana/ws", storedPath("/home/ana/ws", file)), file);
  }
});

test("init stores a data file outside the workspace as an absolute path, and a round's data loads from it", async (t) => {
  const ws = tempDir(t);
  const outside = tempDir(t);
  const line = '{"question": "Mia has 3 apples and buys 4. How many?", "answer": "3+4 = <<3+4=7>>7\\n#### 7"}\n';
  writeFileSync(join(outside, "train.jsonl"), line.repeat(40));
  mkdirSync(join(ws, "data"));
  writeFileSync(join(ws, "data", "test.jsonl"), line.repeat(5));
  await initWorkspace(ws, { train: join(outside, "train.jsonl"), test: join(ws, "data", "test.jsonl") });
  const raw = JSON.parse(readFileSync(configPath(ws), "utf8"));
  assert.equal(raw.data.train, join(outside, "train.jsonl"));
  assert.ok(!raw.data.train.includes(".."), raw.data.train);
  assert.equal(raw.data.test, join("data", "test.jsonl"));
  const data = await loadRunData(readWorkspaceConfig(ws), ws);
  assert.equal(data.test.length, 5, "the relative test file is read");
  assert.equal(data.train.length + data.dev.length, 40, "the absolute training file is read");
});
