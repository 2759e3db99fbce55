import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JsonlWriter, cutTornTailSync, keptTornFiles, readJsonl, tornFields } from "../../../src/core/store/jsonl";
import { tempDir } from "../../helpers/paths";

test("a repair keeps the torn bytes beside the file (<file>.torn-<time>) before it cuts them off, and says where", async (t) => {
  const file = join(tempDir(t), "metrics.jsonl");
  const torn = '{"kind":"train","stage":"dpo","step":93,"loss":0.6';
  writeFileSync(file, '{"kind":"train","stage":"dpo","step":92}\n' + torn);
  const read = await readJsonl(file);
  assert.deepEqual([read.tornLine, read.tornText], [2, torn], "a reader says what the torn line holds");

  const writer = await JsonlWriter.open<{ n: number }>(file);
  await writer.close();
  assert.ok(writer.repaired);
  assert.deepEqual({ line: writer.repaired.line, bytes: writer.repaired.bytes, text: writer.repaired.text }, { line: 2, bytes: Buffer.byteLength(torn), text: torn });
  assert.deepEqual(keptTornFiles(file), [writer.repaired.keptAt]);
  assert.equal(readFileSync(writer.repaired.keptAt, "utf8"), torn);
  assert.equal(readFileSync(file, "utf8"), '{"kind":"train","stage":"dpo","step":92}\n');

  // A second tear in the same millisecond does not overwrite the first one's bytes.
  writeFileSync(file, '{"a":1}\n{"b":');
  const again = cutTornTailSync(file);
  assert.ok(again);
  assert.equal(keptTornFiles(file).length, 2);
  assert.equal(readFileSync(again.keptAt, "utf8"), '{"b":');
});

test("tornFields reads the fields a torn line holds whole, and not a number that may be cut off", () => {
  assert.deepEqual(tornFields('{"kind":"train","stage":"dpo","step":93,"loss":0.6'), { kind: "train", stage: "dpo", step: 93 });
  assert.deepEqual(tornFields('{"kind":"mark","verdict":"corr'), { kind: "mark" });
  assert.deepEqual(tornFields('{"kind":"note","text":"a \\"quoted\\" word","hash":"h'), { kind: "note", text: 'a "quoted" word' });
});
