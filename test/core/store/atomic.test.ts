import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../../../src/core/store/atomic";
import { tempDir } from "../../helpers/paths";

test("writeJsonAtomic replaces the file with pretty JSON and leaves no temporary file", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "manifest.json");
  writeFileSync(file, "old content that is longer than the new one");
  await writeJsonAtomic(file, { a: 1, b: [2] });
  assert.equal(readFileSync(file, "utf8"), '{\n  "a": 1,\n  "b": [\n    2\n  ]\n}\n');
  await writeFileAtomic(file, new Uint8Array([104, 105]));
  assert.equal(readFileSync(file, "utf8"), "hi");
  assert.deepEqual(readdirSync(dir), ["manifest.json"]);
});

test("a failed write leaves the old file and no temporary file", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "manifest.json");
  writeFileSync(file, "old");
  await assert.rejects(writeJsonAtomic(file, undefined), /cannot be written as JSON/);
  // Renaming a file over a folder fails: the temporary file must be cleaned up.
  mkdirSync(join(dir, "target"));
  await assert.rejects(writeFileAtomic(join(dir, "target"), "x"));
  assert.equal(readFileSync(file, "utf8"), "old");
  assert.deepEqual(readdirSync(dir).sort(), ["manifest.json", "target"]);
});
