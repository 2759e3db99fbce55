import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ReviewDecision } from "../../../src/shared/runTypes";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { tempDir } from "../../helpers/paths";

const ALL_KINDS: ReviewDecision[] = [
  { kind: "mark", verdict: "wrong", hash: "h1" },
  { kind: "exclude-sample", hash: "h2" },
  { kind: "include-sample", hash: "h3" },
  { kind: "force-pair", questionId: "q1", chosenHash: "h1", rejectedHash: "h2" },
  { kind: "exclude-pair", chosenHash: "h4", rejectedHash: "h5" },
  { kind: "add-rationale", questionId: "q1", question: "What is 2+3?", rationale: "2 + 3 = 5\n#### 5", hash: "h6" },
  { kind: "note", hash: "h1", text: "step 2 multiplies instead of adding" },
  { kind: "undo", decisionId: "does-not-exist" },
];

test("every decision kind round-trips through the file, with id, time and note", (t) => {
  const dir = tempDir(t);
  const log = new ReviewLog(dir);
  assert.deepEqual(log.entries(), []);
  const written = ALL_KINDS.map((d, i) => log.append(d, i === 0 ? "checked by hand" : undefined));
  for (const [i, entry] of written.entries()) {
    const { id, at, note: _note, ...decision } = entry;
    assert.deepEqual(decision, ALL_KINDS[i]);
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(at)));
  }
  assert.equal(written[0]!.note, "checked by hand");
  assert.ok(!("note" in written[1]!));
  assert.equal(new Set(written.map((e) => e.id)).size, written.length);
  assert.deepEqual(log.entries(), written);
  assert.equal(log.path, join(dir, "reviews.jsonl"));
});

test("a later mark wins; undo retracts; undoing the undo reinstates", (t) => {
  const log = new ReviewLog(tempDir(t));
  const first = log.append({ kind: "mark", verdict: "correct", hash: "h1" });
  log.append({ kind: "mark", verdict: "correct", hash: "h2" });
  const second = log.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  assert.equal(log.sampleVerdicts().get("h1"), "wrong");

  const undo = log.append({ kind: "undo", decisionId: second.id });
  assert.equal(log.sampleVerdicts().get("h1"), "correct");
  assert.deepEqual(log.effective().map((e) => e.id), [first.id, log.entries()[1]!.id]);

  log.append({ kind: "undo", decisionId: undo.id });
  assert.equal(log.sampleVerdicts().get("h1"), "wrong");
  log.append({ kind: "undo", decisionId: first.id });
  assert.equal(log.sampleVerdicts().get("h1"), "wrong");
  assert.deepEqual([...log.sampleVerdicts()].sort(), [["h1", "wrong"], ["h2", "correct"]]);
  // Undo entries are applied, not returned.
  assert.ok(log.effective().every((e) => (e.kind as string) !== "undo"));
});

test("exclude then include is not excluded; include then exclude is", (t) => {
  const log = new ReviewLog(tempDir(t));
  log.append({ kind: "exclude-sample", hash: "a" });
  log.append({ kind: "include-sample", hash: "a" });
  log.append({ kind: "include-sample", hash: "b" });
  log.append({ kind: "exclude-sample", hash: "b" });
  const undone = log.append({ kind: "exclude-sample", hash: "c" });
  log.append({ kind: "undo", decisionId: undone.id });
  assert.deepEqual([...log.excludedSamples()], ["b"]);
});

test("pairs, added rationales and notes: the latest decision on the same target wins", (t) => {
  const log = new ReviewLog(tempDir(t));
  const forced = log.append({ kind: "force-pair", questionId: "q1", chosenHash: "a", rejectedHash: "b" });
  log.append({ kind: "exclude-pair", chosenHash: "c", rejectedHash: "d" });
  assert.deepEqual(log.forcedPairs(), [{ questionId: "q1", chosenHash: "a", rejectedHash: "b", id: forced.id }]);
  assert.deepEqual([...log.excludedPairs()], ["c>d"]);

  // A swap replaces the earlier direction; forcing an excluded pair lifts the exclusion.
  const swapped = log.append({ kind: "force-pair", questionId: "q1", chosenHash: "b", rejectedHash: "a" });
  const unexcluded = log.append({ kind: "force-pair", questionId: "q2", chosenHash: "c", rejectedHash: "d" });
  assert.deepEqual(log.forcedPairs().map((p) => p.id), [swapped.id, unexcluded.id]);
  assert.deepEqual([...log.excludedPairs()], []);
  log.append({ kind: "exclude-pair", chosenHash: "b", rejectedHash: "a" });
  assert.deepEqual(log.forcedPairs().map((p) => p.id), [unexcluded.id]);
  assert.deepEqual([...log.excludedPairs()], ["b>a"]);

  const rationale = { kind: "add-rationale", questionId: "q1", question: "Q?", rationale: "R #### 1", hash: "r1" } as const;
  log.append(rationale);
  const again = log.append(rationale);
  const other = log.append({ ...rationale, rationale: "S #### 1", hash: "r2" });
  log.append({ kind: "undo", decisionId: other.id });
  assert.deepEqual(log.addedRationales(), [
    { questionId: "q1", question: "Q?", rationale: "R #### 1", hash: "r1", id: again.id, problems: [], confirmed: true },
  ]);

  log.append({ kind: "note", hash: "a", text: "first" });
  log.append({ kind: "note", hash: "a", text: "second" });
  log.append({ kind: "note", hash: "b", text: "other" });
  assert.deepEqual([...log.notes()], [["a", ["first", "second"]], ["b", ["other"]]]);
});

test("the log survives a restart and is only ever appended to", (t) => {
  const dir = tempDir(t);
  const log = new ReviewLog(dir);
  log.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  const excluded = log.append({ kind: "exclude-sample", hash: "h2" });
  const before = readFileSync(log.path, "utf8");
  log.append({ kind: "undo", decisionId: excluded.id });
  assert.ok(readFileSync(log.path, "utf8").startsWith(before));

  const restarted = new ReviewLog(dir);
  assert.deepEqual(restarted.effective(), log.effective());
  assert.deepEqual(restarted.sampleVerdicts(), new Map([["h1", "wrong"]]));
  assert.deepEqual(restarted.excludedSamples(), new Set());
});

test("a torn tail from a crash is ignored and the next append lands on its own line", (t) => {
  const dir = tempDir(t);
  const log = new ReviewLog(dir);
  log.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  appendFileSync(log.path, '{"kind":"mark","verdict":"corr');
  assert.equal(log.entries().length, 1);
  log.append({ kind: "mark", verdict: "correct", hash: "h2" });
  const lines = readFileSync(log.path, "utf8").split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 2);
  for (const line of lines) JSON.parse(line);
  assert.deepEqual([...new ReviewLog(dir).sampleVerdicts()], [["h1", "wrong"], ["h2", "correct"]]);
});

test("bad lines are errors naming file:line, and a bad decision is refused before it is written", (t) => {
  const log = new ReviewLog(tempDir(t));
  log.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  const good = readFileSync(log.path, "utf8");
  const expectError = (line: string, reason: string): void => {
    writeFileSync(log.path, good + line + "\n");
    assert.throws(() => log.entries(), (e: Error) => e.message.startsWith(`${log.path}:2: ${reason}`));
  };
  expectError('{"kind":"approve","hash":"h","id":"x","at":"t"}', 'unknown review kind "approve"');
  expectError('{"kind":"mark","verdict":"maybe","hash":"h","id":"x","at":"t"}', '"mark" verdict must be');
  expectError(
    '{"kind":"force-pair","questionId":"q","chosenHash":"a","id":"x","at":"t"}',
    '"force-pair" needs a non-empty string "rejectedHash"',
  );
  expectError('{"kind":"note","hash":"h","text":"t","at":"t"}', 'entry needs a non-empty string "id"');
  expectError("[1,2]", "expected a JSON object");

  writeFileSync(log.path, good);
  assert.throws(() => log.append({ kind: "mark", verdict: "maybe", hash: "h" } as unknown as ReviewDecision), /verdict/);
  assert.throws(() => log.append({ kind: "note", hash: "h" } as unknown as ReviewDecision), /"text"/);
  assert.equal(readFileSync(log.path, "utf8"), good);
});
