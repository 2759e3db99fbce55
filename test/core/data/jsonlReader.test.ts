import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readExamples, readDataset, DatasetLineError } from "../../../src/core/data/jsonlReader";
import { inspectDataset } from "../../../src/core/data/datasetReport";
import { tempDir } from "../../helpers/paths";

const good = (q: string, a: string) => JSON.stringify({ question: q, answer: a });

test("reads records, skips blank lines and a BOM, and gives ids by file and line", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "mini.jsonl");
  writeFileSync(file, "\ufeff" + good("Q1?", "1+1 = <<1+1=2>>2\n#### 2") + "\n\n" + good("Q2?", "So 3.\nA: 3") + "\r\n");
  const out = [];
  for await (const ex of readExamples(file)) out.push(ex);
  assert.deepEqual(out.map((e) => [e.id, e.answer]), [["mini:1", 2], ["mini:3", 3]]);
  assert.equal(out[0]!.question, "Q1?");
});

test("a malformed line gets a clear error with file and line number", async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, RegExp]> = [
    ["{not json", /invalid JSON/],
    [JSON.stringify({ question: "Q" }), /missing field "answer"/],
    [JSON.stringify({ question: 3, answer: "#### 3" }), /field "question" must be a string, not a number/],
    [JSON.stringify({ question: "Q", answer: "no final line" }), /no final answer after ####/],
    [JSON.stringify({ question: "Q", answer: "#### many" }), /no number after ####/],
    ["[1,2]", /expected a JSON object/],
  ];
  for (const [i, [bad, reason]] of cases.entries()) {
    const file = join(dir, `bad${i}.jsonl`);
    writeFileSync(file, [good("a", "#### 1"), good("b", "#### 2"), bad, good("c", "#### 3")].join("\n"));
    await assert.rejects(
      async () => {
        for await (const _ of readExamples(file)) void _;
      },
      (e: unknown) => {
        assert.ok(e instanceof DatasetLineError);
        assert.equal(e.line, 3);
        assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:3: `));
        assert.match(e.message, reason);
        return true;
      },
    );
  }
});

test("collect mode reports every bad line and keeps the good ones", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "mixed.jsonl");
  writeFileSync(file, [good("a", "#### 1"), "oops", good("b", "#### 2"), "{}", good("c", "#### 3")].join("\n"));
  const { examples, errors } = await readDataset(file);
  assert.equal(examples.length, 3);
  assert.deepEqual(errors.map((e) => e.line), [2, 4]);
});

test("a missing file is named in the error", async () => {
  await assert.rejects(readDataset("/nonexistent/data.jsonl"), /\/nonexistent\/data.jsonl: no such file/);
});

test("a folder given as a data file is named in the error", async (t) => {
  const dir = tempDir(t);
  await assert.rejects(readDataset(dir), new RegExp(`^Error: ${dir.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: is a folder, not a file$`));
});

test("text that is not valid UTF-8 is a bad line with its number, never re-decoded with replacement characters; an empty file is reported", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "latin1.jsonl");
  const line = (q: string) => Buffer.from(JSON.stringify({ question: q, answer: "1+1=<<1+1=2>>2\n#### 2" }) + "\n", "utf8");
  // "Café" saved as Latin-1: é is the single byte 0xE9.
  const latin1 = Buffer.from('{"question": "Caf\xe9 sells 1+1 cakes?", "answer": "#### 2"}\n', "latin1");
  writeFileSync(file, Buffer.concat([line("A real question? ✓"), latin1, line("Another one?")]));
  const { examples, errors } = await readDataset(file);
  assert.deepEqual(examples.map((e) => e.question), ["A real question? ✓", "Another one?"]);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /latin1\.jsonl:2: not valid UTF-8 text \(at byte 18 of the line\); save the file as UTF-8/);
  const empty = join(dir, "empty.jsonl");
  writeFileSync(empty, "\n\n");
  const report = await inspectDataset(empty);
  assert.equal(report.errorCount, 1);
  assert.match(report.errors[0]!.message, /empty\.jsonl: the file has no examples \(it is empty or blank\)/);
});
