import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSyntheticSet, freeDataFolder } from "../../../src/core/data/syntheticFiles";
import { tempDir } from "../../helpers/paths";

test("the synthetic set never overwrites a data file: other content stops it before anything is written", (t) => {
  const dir = join(tempDir(t), "data");
  mkdirSync(dir);
  writeFileSync(join(dir, "test.jsonl"), "my own test set\n");
  assert.throws(() => writeSyntheticSet(dir, 0, 20, 0, 5, 2), /data\/test\.jsonl already exists with other content; it is not overwritten/);
  assert.equal(readFileSync(join(dir, "test.jsonl"), "utf8"), "my own test set\n");
  assert.ok(!existsSync(join(dir, "train.jsonl")), "train.jsonl was written before the refusal");
  // The same set written twice (the demo run again) leaves the files as they are.
  const again = join(tempDir(t), "data");
  writeSyntheticSet(again, 0, 20, 0, 5, 2);
  const before = readFileSync(join(again, "train.jsonl"), "utf8");
  writeSyntheticSet(again, 0, 20, 0, 5, 2);
  assert.equal(readFileSync(join(again, "train.jsonl"), "utf8"), before);
  assert.throws(() => writeSyntheticSet(again, 1, 20, 0, 5, 2), /train\.jsonl already exists with other content/);
});

test("a new synthetic set goes beside existing data: data/, else data-2/, data-3/ …", (t) => {
  const ws = tempDir(t);
  assert.equal(freeDataFolder(ws), join(ws, "data"));
  mkdirSync(join(ws, "data"));
  assert.equal(freeDataFolder(ws), join(ws, "data"), "an empty data/ folder holds no data set");
  writeFileSync(join(ws, "data", "train.jsonl"), "x\n");
  assert.equal(freeDataFolder(ws), join(ws, "data-2"));
  mkdirSync(join(ws, "data-2"));
  writeFileSync(join(ws, "data-2", "test.jsonl"), "x\n");
  assert.equal(freeDataFolder(ws), join(ws, "data-3"));
});
