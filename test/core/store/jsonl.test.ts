import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  appendJsonlSync,
  countJsonl,
  JsonlWriter,
  readJsonl,
  readJsonlPage,
  readJsonlSync,
  repairJsonl,
} from "../../../src/core/store/jsonl";
import { tempDir } from "../../helpers/paths";

interface N {
  n: number;
}

/** Every line of the file is whole: it ends in "\n" and each line parses on its own. */
function assertCleanLines(file: string): string[] {
  const text = readFileSync(file, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "file must end on a complete line");
  const lines = text.split("\n").slice(0, -1);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `half-line left in the file: ${line}`);
  return lines;
}

test("a torn last line is dropped, and an appending writer repairs it before writing", async (t) => {
  const file = join(tempDir(t), "samples.jsonl");
  writeFileSync(file, '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4,"ra');
  const torn = await readJsonl<N>(file);
  assert.deepEqual(torn.records, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.equal(torn.tornTail, true);

  const writer = await JsonlWriter.open<N>(file);
  writer.append({ n: 5 });
  writer.append({ n: 6 });
  await writer.close();

  const after = await readJsonl<N>(file);
  assert.deepEqual(after.records.map((r) => r.n), [1, 2, 3, 5, 6]);
  assert.equal(after.tornTail, false);
  assert.equal(assertCleanLines(file).length, 5);
});

test("a bad line in the middle throws with path:line", async (t) => {
  const file = join(tempDir(t), "pairs.jsonl");
  writeFileSync(file, '{"n":1}\nnot json\n{"n":3}\n');
  await assert.rejects(readJsonl(file), (e: Error) => e.message.startsWith(`${file}:2: invalid JSON`));

  // validate's message becomes the reason; blank lines are skipped but still counted in line numbers.
  writeFileSync(file, '{"n":1}\n\n   \n{"x":3}\n');
  const validate = (v: unknown): N => {
    if (typeof (v as N).n !== "number") throw new Error('missing "n"');
    return v as N;
  };
  await assert.rejects(readJsonl(file, { validate }), (e: Error) => e.message === `${file}:4: missing "n"`);
  assert.throws(() => readJsonlSync(file, { validate }), (e: Error) => e.message === `${file}:4: missing "n"`);
});

test("a complete last line without a newline still counts as torn", async (t) => {
  // Writers end every record with "\n" in the same write, so a missing newline means the write was cut short.
  // A cut-off record can still parse ({"n":12} from {"n":123}), so parsing cannot tell whole from torn.
  const file = join(tempDir(t), "metrics.jsonl");
  writeFileSync(file, '{"n":1}\n{"n":12}');
  const read = await readJsonl<N>(file);
  assert.deepEqual(read.records, [{ n: 1 }]);
  assert.equal(read.tornTail, true);
  assert.deepEqual(readJsonlSync<N>(file), { records: [{ n: 1 }], tornTail: true, tornLine: 2, tornText: '{"n":12}' });
  assert.equal(await countJsonl(file), 1);
  assert.deepEqual(await readJsonlPage<N>(file, 0, 10), [{ n: 1 }]);
});

test("missing and empty files read as empty", async (t) => {
  const dir = tempDir(t);
  assert.deepEqual(await readJsonl(join(dir, "absent.jsonl")), { records: [], tornTail: false });
  assert.deepEqual(readJsonlSync(join(dir, "absent.jsonl")), { records: [], tornTail: false });
  assert.equal(await countJsonl(join(dir, "absent.jsonl")), 0);
  writeFileSync(join(dir, "empty.jsonl"), "");
  assert.deepEqual(await readJsonl(join(dir, "empty.jsonl")), { records: [], tornTail: false });
  assert.deepEqual(await readJsonlPage(join(dir, "empty.jsonl"), 0, 5), []);
});

test("countJsonl and readJsonlPage on a 50,000-line file", async (t) => {
  const file = join(tempDir(t), "samples-dpo.jsonl");
  const lines: string[] = [];
  for (let i = 0; i < 50_000; i++) lines.push(JSON.stringify({ n: i, rationale: `step ${i} `.repeat(5) }));
  writeFileSync(file, lines.join("\n") + "\n");

  assert.equal(await countJsonl(file), 50_000);
  const page = async (offset: number, limit: number): Promise<number[]> =>
    (await readJsonlPage<N>(file, offset, limit)).map((r) => r.n);
  assert.deepEqual(await page(0, 3), [0, 1, 2]);
  assert.deepEqual(await page(25_000, 4), [25_000, 25_001, 25_002, 25_003]);
  const last = await page(49_990, 20);
  assert.equal(last.length, 10);
  assert.deepEqual(last, Array.from({ length: 10 }, (_, i) => 49_990 + i));
  assert.deepEqual(await page(50_000, 5), []);
  assert.deepEqual(await page(7, 0), []);
  await assert.rejects(readJsonlPage(file, -1, 5), RangeError);

  const all = await readJsonl<N>(file);
  assert.equal(all.records.length, 50_000);
  assert.equal(all.records[49_999]?.n, 49_999);

  // A torn tail and blank lines are not records.
  appendFileSync(file, "\n  \n" + '{"n":50000}');
  assert.equal(await countJsonl(file), 50_000);
  assert.deepEqual(await page(49_998, 5), [49_998, 49_999]);
});

test("readJsonlPage parses only the page, so a bad line outside it does not matter", async (t) => {
  const file = join(tempDir(t), "eval.jsonl");
  writeFileSync(file, '{"n":0}\nbroken\n{"n":2}\n{"n":3}\n{"n":4}\nbroken\n');
  assert.deepEqual(await readJsonlPage<N>(file, 2, 3), [{ n: 2 }, { n: 3 }, { n: 4 }]);
  await assert.rejects(readJsonlPage(file, 2, 4), (e: Error) => e.message.startsWith(`${file}:6: `));
});

test("repairJsonl truncates only a torn tail", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "a.jsonl");
  writeFileSync(file, '{"n":1}\n');
  assert.equal(await repairJsonl(file), false);
  assert.equal(readFileSync(file, "utf8"), '{"n":1}\n');
  writeFileSync(file, '{"n":1}\n{"n":2}\n{"n":3');
  assert.equal(await repairJsonl(file), true);
  assert.equal(readFileSync(file, "utf8"), '{"n":1}\n{"n":2}\n');
  // A torn first line longer than the 64 KiB read-back chunk: nothing complete is left.
  writeFileSync(file, '{"text":"' + "x".repeat(200_000));
  assert.equal(await repairJsonl(file), true);
  assert.equal(readFileSync(file, "utf8"), "");
  assert.equal(await repairJsonl(join(dir, "absent.jsonl")), false);
});

test("JsonlWriter creates folders, truncates on request, keeps order across background writes", async (t) => {
  const file = join(tempDir(t), "runs", "r", "round-1", "pairs.jsonl");
  const first = await JsonlWriter.open<N>(file);
  first.append({ n: -1 });
  await first.close();

  const writer = await JsonlWriter.open<N & { pad: string }>(file, { truncate: true });
  // About 4 MB, past the background-write threshold several times.
  for (let i = 0; i < 40_000; i++) writer.append({ n: i, pad: "p".repeat(90) });
  // Past 1 MB the writer starts writing without waiting for flush, so memory stays bounded.
  const deadline = Date.now() + 10_000;
  while (statSync(file).size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(statSync(file).size > 0, "nothing was written before flush");
  await writer.flush();
  assert.equal(await countJsonl(file), 40_000);
  writer.append({ n: 40_000, pad: "" });
  await writer.close();
  await writer.close();
  assert.throws(() => writer.append({ n: 0, pad: "" }), /append after close/);

  const { records } = await readJsonl<N>(file);
  assert.equal(records.length, 40_001);
  assert.ok(records.every((r, i) => r.n === i), "records out of order");
});

test("appendJsonlSync creates the file, repairs a torn tail and writes one whole line", (t) => {
  const file = join(tempDir(t), "sub", "reviews.jsonl");
  appendJsonlSync(file, { n: 1 });
  assert.ok(existsSync(file));
  appendFileSync(file, '{"n":2,"x');
  appendJsonlSync(file, { n: 3, text: "line\nbreak" });
  assert.deepEqual(readJsonlSync(file).records, [{ n: 1 }, { n: 3, text: "line\nbreak" }]);
  assert.equal(assertCleanLines(file).length, 2);
  assert.throws(() => appendJsonlSync(file, undefined), /cannot be written as JSON/);
});
