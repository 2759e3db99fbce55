import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { RunStore } from "../../../src/core/store/runStore";
import { ReviewLog } from "../../../src/core/store/reviewLog";
import { contentHash } from "../../../src/core/store/hash";
import { rationaleSpans, calcCounts, arithmeticProblems } from "../../../src/core/review/rationaleSpans";
import { wordDiff } from "../../../src/core/review/wordDiff";
import { buildReviewQuestion } from "../../../src/core/review/reviewQuestion";
import { firstQuestionGroup, findGoldExample, recordsOfQuestion } from "../../../src/core/review/questionRecords";
import { recordsInFilter } from "../../../src/core/review/reviewQueue";
import type { PairRecord, SampleRecord } from "../../../src/shared/runTypes";
import { tempDir } from "../../helpers/paths";

test("a rationale is split into text, checked calculations (wrong ones with their right value, forced ones marked) and the answer line", () => {
  const r = "She has 16 - 3 = <<16-3=13>>13 eggs.\nShe sells 13 * 2 = <<13*2=24>>24.\nThen <<24/0=1>>1.\n#### 24";
  const spans = rationaleSpans(r, 26, [{ expression: "16-3", forced: "13" }, { expression: "13*2", forced: null }]);
  assert.equal(spans.map((s) => s.text).join(""), r, "the spans give back the text exactly");
  const calcs = spans.filter((s) => s.kind === "calc");
  assert.deepEqual(calcs.map((c) => [c.expression, c.status, c.forced]), [["16-3", "ok", true], ["13*2", "wrong", false], ["24/0", "unparseable", false]]);
  assert.equal(calcs[1]!.kind === "calc" && calcs[1]!.expected, "26");
  const answer = spans.find((s) => s.kind === "answer");
  assert.deepEqual(answer, { kind: "answer", text: "#### 24", correct: false });
  assert.equal(rationaleSpans(r, 24).find((s) => s.kind === "answer")!.kind === "answer" && (rationaleSpans(r, 24).find((s) => s.kind === "answer") as { correct: boolean }).correct, true);
  assert.deepEqual(calcCounts(spans), { total: 3, ok: 1, forced: 1 });
});

test("the word diff marks what only the rejected and only the chosen say, and rebuilds both texts", () => {
  const rejected = "She sells 13 * 2 = 24 eggs.\n#### 24";
  const chosen = "She sells 13 * 2 = 26 eggs.\n#### 26";
  const d = wordDiff(rejected, chosen);
  assert.equal(d.filter((p) => p.op !== "added").map((p) => p.text).join(""), rejected);
  assert.equal(d.filter((p) => p.op !== "removed").map((p) => p.text).join(""), chosen);
  assert.deepEqual(d.filter((p) => p.op === "removed").map((p) => p.text.trim()), ["24", "24"]);
  assert.deepEqual(d.filter((p) => p.op === "added").map((p) => p.text.trim()), ["26", "26"]);
  assert.deepEqual(wordDiff("same words", "same words"), [{ op: "same", text: "same words" }]);
});

function sample(q: number, i: number, correct: boolean, extra: Partial<SampleRecord> = {}): SampleRecord {
  const rationale = `Step for ${q}: <<${q}+0=${q}>>${q}.\nvariant ${i}\n#### ${correct ? q : q + 1}`;
  return {
    hash: contentHash(`Question ${q}?`, rationale), questionId: `train:${q + 1}`, question: `Question ${q}?`, rationale,
    answer: correct ? q : q + 1, gold: q, correct, logProb: -3 - i, calculatorCalls: [{ expression: `${q}+0`, forced: String(q) }], arithmeticErrors: 0, finished: true, round: 1, index: i, ...extra,
  };
}

async function roundOnDisk(dir: string, questions: number, perQuestion: number, right: (q: number, i: number) => boolean): Promise<{ store: RunStore; samples: SampleRecord[]; data: string }> {
  const store = await RunStore.create(dir, { mode: "dpo-st" });
  const samples: SampleRecord[] = [];
  for (let q = 0; q < questions; q++) for (let i = 0; i < perQuestion; i++) samples.push(sample(q, i, right(q, i)));
  const file = store.path(1, "samples-dpo.jsonl");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, samples.map((s) => JSON.stringify(s)).join("\n") + "\n");
  const data = join(dir, "train.jsonl");
  const gold = Array.from({ length: questions }, (_, q) => JSON.stringify({ question: `Question ${q}?`, answer: `It is <<${q}*1=${q}>>${q}.\n#### ${q}` }));
  writeFileSync(data, gold.join("\n") + "\n");
  return { store, samples, data };
}

test("a question's view: gold, samples with roles, pairs with their diff, and what a person decided (swap, exclude, verdict)", async (t) => {
  const dir = tempDir(t);
  const { store, samples, data } = await roundOnDisk(dir, 3, 4, (q, i) => i < 2);
  const q1 = samples.filter((s) => s.questionId === "train:2");
  const pairs: PairRecord[] = [
    { questionId: "train:2", question: "Question 1?", chosenHash: q1[0]!.hash, rejectedHash: q1[2]!.hash, chosen: q1[0]!.rationale, rejected: q1[2]!.rationale, similarity: 0.5, source: "automatic", round: 1 },
    { questionId: "train:2", question: "Question 1?", chosenHash: q1[1]!.hash, rejectedHash: q1[3]!.hash, chosen: q1[1]!.rationale, rejected: q1[3]!.rationale, similarity: 0.4, source: "automatic", round: 1 },
  ];
  writeFileSync(store.path(1, "pairs.jsonl"), pairs.map((p) => JSON.stringify(p)).join("\n") + "\n");
  const reviews = new ReviewLog(dir);
  reviews.append({ kind: "mark", verdict: "wrong", hash: q1[1]!.hash });
  reviews.append({ kind: "force-pair", questionId: "train:2", chosenHash: q1[2]!.hash, rejectedHash: q1[0]!.hash }); // swap of pair 1
  reviews.append({ kind: "exclude-pair", chosenHash: q1[1]!.hash, rejectedHash: q1[3]!.hash });
  reviews.append({ kind: "note", hash: q1[3]!.hash, text: "plan is wrong" });
  reviews.append({ kind: "mark", verdict: "wrong", hash: samples[0]!.hash }); // another question: not listed here

  const view = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:2");
  assert.ok(view);
  assert.equal(view.question, "Question 1?");
  assert.equal(view.gold?.hash, contentHash("Question 1?", "It is <<1*1=1>>1.\n#### 1"));
  assert.deepEqual(view.samples.map((s) => [s.number, s.autoCorrect, s.correct, s.verdict]), [[1, true, true, null], [2, true, false, "wrong"], [3, false, false, null], [4, false, false, null]]);
  assert.deepEqual(view.samples.map((s) => s.roles), [["chosen"], ["chosen"], ["rejected"], ["rejected"]]);
  assert.deepEqual(view.samples.map((s) => s.decidedByPerson), [true, true, true, true]);
  assert.deepEqual(view.samples[3]!.notes, ["plan is wrong"]);
  assert.deepEqual(view.samples[0]!.calcForced, 1);
  // The swap is one pair, shown the way round the next round builds it.
  assert.deepEqual(view.pairs.map((p) => [p.chosenLabel, p.rejectedLabel, p.origin, p.status]), [["sample 3", "sample 1", "person", "swapped"], ["sample 2", "sample 4", "built", "excluded"]]);
  assert.deepEqual([view.pairs[0]!.chosenHash, view.pairs[0]!.rejectedHash], [q1[2]!.hash, q1[0]!.hash]);
  assert.ok(view.pairs[0]!.diff.some((d) => d.op === "added") && view.pairs[0]!.diff.some((d) => d.op === "removed"));
  assert.equal(view.pairs[0]!.diff.filter((d) => d.op !== "removed").map((d) => d.text).join(""), q1[2]!.rationale, "the diff leads to the new chosen side");
  assert.equal(view.decisions.length, 4, "only this question's decisions");
  assert.deepEqual(view.decisions.map((d) => d.summary), ["marked sample 2 wrong", "set sample 3 ≻ sample 1", "excluded the pair sample 2 ≻ sample 4", "note on sample 4: plan is wrong"]);
  assert.deepEqual(JSON.parse(JSON.stringify(view)), view, "the view crosses the webview boundary as JSON unchanged");

  // An undo takes the last one back.
  reviews.append({ kind: "undo", decisionId: reviews.effective().find((e) => e.kind === "note")!.id });
  const after = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:2");
  assert.deepEqual(after!.samples[3]!.notes, []);
  assert.equal(after!.decisions.length, 3);
});

test("gold examples are found by line id and by their own id; records of one question are found without the others", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "train.jsonl");
  writeFileSync(file, [
    JSON.stringify({ question: "A?", answer: "x\n#### 1" }),
    "",
    JSON.stringify({ id: "syn-0-7", question: "B?", answer: "y\n#### 2" }),
    JSON.stringify({ question: "C?", answer: "z\n#### 3" }),
  ].join("\n"));
  assert.equal((await findGoldExample([file], "train:4"))?.question, "C?");
  assert.equal((await findGoldExample([file], "syn-0-7"))?.question, "B?");
  assert.equal(await findGoldExample([file], "train:9"), null);
  const { store } = await roundOnDisk(dir, 12, 2, () => true);
  const recs = await recordsOfQuestion<SampleRecord>(store.path(1, "samples-dpo.jsonl"), "train:1");
  assert.deepEqual(recs.map((r) => r.questionId), ["train:1", "train:1"], "train:1 is not train:10 or train:11");
});

test("the review opens on a 50,000-sample round in well under half a second: only the shown question is read", async (t) => {
  const dir = tempDir(t);
  // 10,000 questions × 5 samples; the first mixed question is the 3rd.
  const { store, data } = await roundOnDisk(dir, 10_000, 5, (q, i) => q % 3 === 2 ? i < 2 : q % 3 === 1);
  const reviews = new ReviewLog(dir);
  const started = performance.now();
  const first = await firstQuestionGroup<SampleRecord>(store.path(1, "samples-dpo.jsonl"), (g) => recordsInFilter(g, "mixed", new Map(), () => false));
  assert.ok(first);
  const view = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, first[0]!.questionId, { file: "samples-dpo.jsonl", records: first });
  const firstMs = performance.now() - started;
  assert.equal(view?.questionId, "train:3");
  // A question deep in the file (as from the explorer): its lines are found by a byte search.
  const deep = performance.now();
  const last = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:9999");
  const deepMs = performance.now() - deep;
  assert.equal(last?.samples.length, 5);
  assert.equal(last?.gold?.spans.map((s) => s.text).join(""), "It is <<9998*1=9998>>9998.\n#### 9998");
  t.diagnostic(`first mixed question of 50,000 samples in ${firstMs.toFixed(0)} ms; question 10,000 in ${deepMs.toFixed(0)} ms`);
  assert.ok(firstMs < 500 && deepMs < 500, `${firstMs} ms / ${deepMs} ms`);
});

test("a number written after `>>` that is not the result is flagged, and the sample's calculator count says so", () => {
  const r = "He had 3 books and gave away 2: <<3-2=1>>2 books left. Then <<2*5=10>>10 pages, <<1000+500=1500>>1,500 words, <<1000*2=2000>>2,000.\n#### 2";
  const spans = rationaleSpans(r, 2);
  assert.equal(spans.map((s) => s.text).join(""), r);
  const calcs = spans.filter((s) => s.kind === "calc");
  assert.deepEqual(calcs.map((c) => (c.kind === "calc" ? [c.expression, c.status, c.copiedAs ?? null] : null)), [["3-2", "ok", "2"], ["2*5", "ok", null], ["1000+500", "ok", null], ["1000*2", "ok", null]]);
  assert.deepEqual(calcCounts(spans), { total: 4, ok: 3, forced: 0 }, "calculator 3/4 ok, not 4/4");
});

test("a pair whose chosen side a person marked wrong (or whose rejected side they marked right) says the next round drops it; a forced pair stays", async (t) => {
  const dir = tempDir(t);
  const { store, samples, data } = await roundOnDisk(dir, 3, 4, (q, i) => i < 2);
  const q1 = samples.filter((s) => s.questionId === "train:2");
  const pair = (c: number, r: number, source: PairRecord["source"]): PairRecord => ({ questionId: "train:2", question: "Question 1?", chosenHash: q1[c]!.hash, rejectedHash: q1[r]!.hash, chosen: q1[c]!.rationale, rejected: q1[r]!.rationale, similarity: 0.5, source, round: 1 });
  writeFileSync(store.path(1, "pairs.jsonl"), [pair(0, 2, "automatic"), pair(1, 3, "automatic"), pair(1, 2, "human")].map((p) => JSON.stringify(p)).join("\n") + "\n");
  const reviews = new ReviewLog(dir);
  const show = async () => (await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:2"))!.pairs.map((p) => [p.status, p.nextRound]);
  assert.deepEqual(await show(), [["active", "built automatically"], ["active", "built automatically"], ["active", "set by you · used next round"]]);
  reviews.append({ kind: "mark", verdict: "wrong", hash: q1[0]!.hash });
  reviews.append({ kind: "mark", verdict: "correct", hash: q1[3]!.hash });
  reviews.append({ kind: "mark", verdict: "wrong", hash: q1[1]!.hash });
  assert.deepEqual(await show(), [
    ["dropped", "dropped next round: you marked its chosen side, sample 1, wrong"],
    ["dropped", "dropped next round: you marked its chosen side, sample 2, wrong"],
    ["active", "set by you · used next round"],
  ]);
});

test("a hand-written rationale the arithmetic check questions is held: listed with its problems, not a positive until confirmed", async (t) => {
  const dir = tempDir(t);
  const { store, data } = await roundOnDisk(dir, 3, 4, (q, i) => i < 2);
  const reviews = new ReviewLog(dir);
  const rationale = "She has 4 apples for 2 friends: <<4/2=3>>3 each.\n#### 2";
  const spans = rationaleSpans(rationale, 2);
  const problems = arithmeticProblems(spans);
  assert.deepEqual(problems, ["4/2 is 2, not 3"]);
  assert.deepEqual(arithmeticProblems(rationaleSpans("<<3-2=1>>2 left\n#### 2", 2)), ["<<3-2=1>> is followed by 2, not 1"]);
  assert.deepEqual(arithmeticProblems(rationaleSpans("<<3-2=1>>1 left\n#### 1", 1)), []);
  const hash = contentHash("Question 1?", rationale);
  reviews.append({ kind: "add-rationale", questionId: "train:2", question: "Question 1?", rationale, hash, unconfirmed: problems });
  let view = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:2");
  assert.deepEqual(view!.written.map((w) => [w.confirmed, w.problems]), [[false, ["4/2 is 2, not 3"]]]);
  assert.deepEqual(reviews.addedRationales().map((a) => a.confirmed), [false]);
  assert.equal(view!.decisions[0]!.summary, "wrote a rationale (held: 4/2 is 2, not 3)");
  reviews.append({ kind: "confirm-rationale", hash });
  view = await buildReviewQuestion({ store, round: 1, reviews, dataFiles: [data] }, "train:2");
  assert.deepEqual(view!.written.map((w) => w.confirmed), [true]);
  assert.deepEqual(reviews.addedRationales().map((a) => a.confirmed), [true]);
  assert.equal(view!.decisions[1]!.summary, "confirmed your rationale as written");
});
