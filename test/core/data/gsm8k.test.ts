import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readExamples } from "../../../src/core/data/jsonlReader";
import { checkArithmetic, findAnnotations } from "../../../src/core/data/annotations";
import { inspectDataset, formatDatasetReport } from "../../../src/core/data/datasetReport";
import { gsm8kDir, GSM8K_ABSENT } from "../../helpers/paths";

const dir = gsm8kDir();

test("every GSM8K train and test line parses and its final answer extracts", { skip: dir ? false : GSM8K_ABSENT }, async () => {
  for (const [name, expected] of [["train.jsonl", 7473], ["test.jsonl", 1319]] as const) {
    let n = 0;
    for await (const ex of readExamples(join(dir!, name))) {
      n++;
      assert.ok(Number.isFinite(ex.answer), `${ex.id}: answer ${ex.answer}`);
      // The gold answer is the number after ####, exactly as written (commas removed).
      const written = /####\s*(.*)$/.exec(ex.rationale)![1]!.replace(/,/g, "");
      assert.equal(ex.answer, Number(written), ex.id);
    }
    assert.equal(n, expected, `${name}: ${n} examples`);
  }
});

test("GSM8K train: every calculator annotation is read, and more than 99% evaluate to their written result", { skip: dir ? false : GSM8K_ABSENT }, async (t) => {
  let total = 0;
  let ok = 0;
  let wrong = 0;
  let unparseable = 0;
  let rawMarkers = 0;
  const unparseableSamples: string[] = [];
  for await (const ex of readExamples(join(dir!, "train.jsonl"))) {
    rawMarkers += ex.rationale.split("<<").length - 1;
    for (const c of checkArithmetic(ex.rationale)) {
      total++;
      if (c.verdict.kind === "ok") ok++;
      else if (c.verdict.kind === "wrong") wrong++;
      else {
        unparseable++;
        if (unparseableSamples.length < 5) unparseableSamples.push(`<<${c.expression}=${c.written}>>`);
      }
    }
  }
  // Every `<<` opens an annotation the reader finds (a few GSM8K lines hold a malformed one, counted apart).
  const found = total;
  t.diagnostic(`GSM8K train annotations: ${total} found of ${rawMarkers} '<<' markers; ${ok} evaluate to the written result (${((100 * ok) / total).toFixed(2)}%), ${wrong} differ, ${unparseable} outside the grammar, e.g. ${unparseableSamples.join(" ")}`);
  assert.ok(found >= rawMarkers * 0.999, `found ${found} of ${rawMarkers}`);
  assert.ok(ok / total > 0.99, `only ${ok}/${total} evaluate to the written result`);
});

test("findAnnotations agrees with a plain scan on GSM8K test", { skip: dir ? false : GSM8K_ABSENT }, async () => {
  for await (const ex of readExamples(join(dir!, "test.jsonl"))) {
    const spans = findAnnotations(ex.rationale);
    for (const s of spans) assert.ok(ex.rationale.slice(s.start, s.end).startsWith("<<") && ex.rationale.slice(s.start, s.end).endsWith(">>"));
  }
});

test("GSM8K: `check` judges every training annotation ('//' included) and names the one test annotation it cannot judge", { skip: dir ? false : GSM8K_ABSENT }, async () => {
  const train = await inspectDataset(join(dir!, "train.jsonl"));
  assert.equal(train.annotationsUnparseable + train.annotationsBadResult, 0, JSON.stringify(train.unjudged));
  const test = await inspectDataset(join(dir!, "test.jsonl"));
  assert.deepEqual(test.unjudged.map((u) => [u.line, u.annotation]), [[320, "<<3/4=3/4>>"]]);
  assert.equal(test.annotationsBadResult, 1);
  assert.match(formatDatasetReport(test), /cannot judge: .*test\.jsonl:320 <<3\/4=3\/4>> \(the written result "3\/4" is not a number \(the expression gives 0\.75\)\)/);
});
