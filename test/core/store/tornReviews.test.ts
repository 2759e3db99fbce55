import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { keptTornFiles } from "../../../src/core/store/jsonl";
import { tempDir } from "../../helpers/paths";

test("a torn last decision is named (what it was, where its bytes are), kept beside the log when the next append repairs it, and listed until deleted", (t) => {
  const dir = tempDir(t);
  const log = new ReviewLog(dir);
  log.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  // The person's next decision, cut off by a crash mid-write: its kind, verdict, hash and time are whole.
  const torn = '{"kind":"mark","verdict":"correct","hash":"abc123def4567890","id":"5f0c","at":"2026-03-04T05:06:07.000Z","no';
  appendFileSync(log.path, torn);

  const before = log.read();
  assert.equal(before.entries.length, 1);
  assert.equal(before.lost.length, 1, "the torn decision is reported, not dropped");
  const [lost] = before.lost;
  assert.deepEqual({ file: lost!.file, line: lost!.line, kind: lost!.kind, verdict: lost!.verdict, hash: lost!.hash, at: lost!.at }, { file: log.path, line: 2, kind: "mark", verdict: "correct", hash: "abc123def4567890", at: "2026-03-04T05:06:07.000Z" });
  assert.ok(lost!.message.includes(`${log.path}:2`), lost!.message);
  assert.match(lost!.message, /"mark" correct of sample abc123def456 .*Make that decision again/);

  // The next decision repairs the log: the torn bytes go beside it, whole.
  log.append({ kind: "exclude-sample", hash: "h2" });
  assert.ok(readFileSync(log.path, "utf8").endsWith("\n"));
  const kept = keptTornFiles(log.path);
  assert.equal(kept.length, 1);
  assert.match(basename(kept[0]!), /^reviews\.jsonl\.torn-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d/);
  assert.equal(readFileSync(kept[0]!, "utf8"), torn);

  const after = new ReviewLog(dir).read();
  assert.equal(after.entries.length, 2);
  assert.equal(after.lost.length, 1, "still named after the repair");
  assert.equal(after.lost[0]!.file, kept[0]);
  assert.equal(after.lost[0]!.line, undefined);
  assert.ok(after.lost[0]!.message.includes(`then delete ${basename(kept[0]!)}`), after.lost[0]!.message);

  rmSync(kept[0]!);
  assert.deepEqual(new ReviewLog(dir).read().lost, [], "once the person deletes the kept bytes, nothing is reported");
});
