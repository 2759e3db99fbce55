import { test } from "node:test";
import assert from "node:assert/strict";
import { jaccard, tokenSet, deduplicate } from "../../../src/core/selftrain/similarity";
import { passAtK, meanPassAtK } from "../../../src/core/selftrain/passAtK";
import { buildPairs, type Candidate } from "../../../src/core/selftrain/pairs";
import { selectPseudoLabels, percentile } from "../../../src/core/selftrain/pseudoLabels";
import { NO_DECISIONS, humanDecisions, type HumanDecisions } from "../../../src/core/selftrain/humanView";
import { pairKey, ReviewLog } from "../../../src/core/store/reviewLog";
import { tempDir } from "../../helpers/paths";
import type { SampleRecord, PseudoLabelRecord } from "../../../src/shared/runTypes";

test("token-set Jaccard and de-duplication at 0.7", () => {
  assert.deepEqual([...tokenSet("16-3=13 eggs")].sort(), ["-", "13", "16", "3", "=", "eggs"]);
  assert.equal(jaccard(tokenSet("a b c d"), tokenSet("a b c e")), 3 / 5);
  const texts = ["Mia has 3 + 4 = 7 apples.", "Mia has 3 + 4 = 7 apples!", "Sam gives away 5 so 10 - 5 = 5."];
  assert.deepEqual(deduplicate(texts, (t) => t), [texts[0], texts[2]]);
  assert.deepEqual(deduplicate(texts.slice(1), (t) => t, 0.7, [texts[0]!]), [texts[2]]);
});

test("pass@k, unbiased estimator", () => {
  assert.ok(Math.abs(passAtK(5, 1, 1) - 0.2) < 1e-12);
  assert.equal(passAtK(5, 2, 5), 1);
  assert.equal(passAtK(5, 0, 3), 0);
  assert.ok(Math.abs(passAtK(10, 3, 2) - (1 - 21 / 45)) < 1e-12);
  assert.ok(Math.abs(meanPassAtK([{ n: 5, c: 1 }, { n: 5, c: 5 }], 1) - 0.6) < 1e-12);
  assert.throws(() => passAtK(3, 1, 5), /at least 5 samples/);
});

const q = "Mia has 12 apples. She buys 5 more. How many apples does Mia have now?";
function cand(hash: string, rationale: string, correct: boolean, origin: Candidate["origin"] = "sample", questionId = "q1"): Candidate {
  return { hash, questionId, question: q, rationale, correct, origin };
}
const gold = cand("g", "Mia starts with 12 apples.\nAfter buying 5 more, there are 12 + 5 = <<12+5=17>>17 apples.\n#### 17", true, "gold");
const samples = [
  cand("s1", "Mia starts with 12 apples.\nAfter buying 5 more, there are 12 + 5 = <<12+5=17>>17 apples.\n#### 17", true),
  cand("s2", "She has 12 and buys 5 so 12+5 = <<12+5=17>>17 in all.\n#### 17", true),
  cand("s3", "Mia starts with 12 apples.\nAfter losing 5, there are 12 - 5 = <<12-5=7>>7 apples.\n#### 7", false),
  cand("s4", "Mia starts with 12 apples.\nAfter losing 5, there are 12 - 5 = <<12-5=7>>7 apples!\n#### 7", false),
  cand("s5", "Twelve times five gives 12 * 5 = <<12*5=60>>60.\n#### 60", false),
  cand("s6", "Doubling: 12 * 2 = <<12*2=24>>24 then 24 + 5 = <<24+5=29>>29.\n#### 29", false),
];
const allRight = [cand("g2", "1 + 1 = <<1+1=2>>2\n#### 2", true, "gold", "q2"), cand("t1", "So 1+1 = <<1+1=2>>2.\n#### 2", true, "sample", "q2")];

test("pairs: gold is a positive, duplicates removed, at most 3 least-similar pairs, no pair without a negative", () => {
  const { pairs, counts } = buildPairs([gold, ...samples, ...allRight], NO_DECISIONS, 1, { maxPairsPerQuestion: 3 });
  assert.equal(pairs.length, 3);
  assert.ok(pairs.every((p) => p.questionId === "q1" && p.source === "automatic"));
  // s1 duplicates gold (dropped in favour of gold), s4 duplicates s3.
  assert.ok(!pairs.some((p) => p.chosenHash === "s1" || p.rejectedHash === "s4"));
  assert.ok(pairs.some((p) => p.chosenHash === "g"));
  assert.deepEqual([counts.positives, counts.negatives, counts.questionsWithoutNegative], [2 + 1, 3, 1]);
  // The kept pairs are the least similar of all positive × negative ones.
  const sims = pairs.map((p) => p.similarity);
  assert.deepEqual(sims, [...sims].sort((a, b) => a - b));
  const maxKept = Math.max(...sims);
  const all = [gold, samples[1]!].flatMap((c) => [samples[2]!, samples[4]!, samples[5]!].map((r) => jaccard(tokenSet(c.rationale), tokenSet(r.rationale))));
  assert.equal(all.filter((s) => s < maxKept).length, 2);
});

test("pairs: human decisions win over the answer check and are marked as human", () => {
  const human: HumanDecisions = {
    verdicts: new Map([["s5", "correct"]]),
    excluded: new Set(["s6"]),
    forcedPairs: [{ questionId: "q1", chosenHash: "s2", rejectedHash: "s3" }],
    excludedPairs: new Set([pairKey("g", "s3")]),
    added: [{ questionId: "q2", question: "1+1?", rationale: "One and one make 2.\n#### 3", hash: "h1" }],
  };
  const { pairs } = buildPairs([gold, ...samples, ...allRight], human, 2, { maxPairsPerQuestion: 3 });
  assert.ok(!pairs.some((p) => p.rejectedHash === "s6" || p.chosenHash === "s6"), "excluded sample used");
  assert.ok(!pairs.some((p) => p.rejectedHash === "s5"), "s5 was marked correct");
  assert.ok(!pairs.some((p) => p.chosenHash === "g" && p.rejectedHash === "s3" ), "excluded pair built");
  const forced = pairs.filter((p) => p.source === "human");
  assert.deepEqual(forced.map((p) => [p.chosenHash, p.rejectedHash, p.round]), [["s2", "s3", 2]]);
  // q2 still has no negative: a hand-written rationale is a positive.
  assert.ok(!pairs.some((p) => p.questionId === "q2"));
});

test("pairs: a person's swap replaces the automatic direction, it is not built beside it", () => {
  // Without decisions, gold ≻ s5 is among the automatic pairs (they are the least similar).
  const before = buildPairs([gold, ...samples], NO_DECISIONS, 1, { maxPairsPerQuestion: 3 }).pairs;
  assert.ok(before.some((p) => p.chosenHash === "g" && p.rejectedHash === "s5"));
  const swapped: HumanDecisions = { ...NO_DECISIONS, forcedPairs: [{ questionId: "q1", chosenHash: "s5", rejectedHash: "g" }] };
  const after = buildPairs([gold, ...samples], swapped, 2, { maxPairsPerQuestion: 3 }).pairs;
  assert.deepEqual(after.filter((p) => p.source === "human").map((p) => [p.chosenHash, p.rejectedHash]), [["s5", "g"]]);
  assert.ok(!after.some((p) => p.chosenHash === "g" && p.rejectedHash === "s5"), "the overridden direction was built too");
});

test("pairs: a held hand-written rationale is no positive until confirmed; a pair the review says is dropped is not built", (t) => {
  const log = new ReviewLog(tempDir(t));
  const written = "Mia had 12 and bought 5: <<12+5=18>>18.\n#### 17";
  log.append({ kind: "add-rationale", questionId: "q1", question: q, rationale: written, hash: "w1", unconfirmed: ["12+5 is 17, not 18"] });
  const all = { maxPairsPerQuestion: 100 };
  const chosen = (h: HumanDecisions) => new Set(buildPairs([gold, ...samples], h, 2, all).pairs.map((p) => p.chosenHash));
  assert.ok(!chosen(humanDecisions(log)).has("w1"), "a held rationale was used as a positive");
  log.append({ kind: "confirm-rationale", hash: "w1" });
  assert.ok(chosen(humanDecisions(log)).has("w1"), "the confirmed rationale is a positive");
  // The review's "dropped next round" for a pair whose chosen side was marked wrong: the next round indeed does not build it.
  const before = buildPairs([gold, ...samples], humanDecisions(log), 2, all).pairs.find((p) => p.chosenHash !== "g" && p.chosenHash !== "w1")!;
  log.append({ kind: "mark", verdict: "wrong", hash: before.chosenHash });
  assert.ok(!buildPairs([gold, ...samples], humanDecisions(log), 3, all).pairs.some((p) => p.chosenHash === before.chosenHash && p.rejectedHash === before.rejectedHash));
});

function sample(hash: string, questionId: string, rationale: string, correct: boolean): SampleRecord {
  return { hash, questionId, question: questionId, rationale, answer: null, gold: 0, correct, logProb: 0, calculatorCalls: [], arithmeticErrors: 0, finished: true, round: 1, index: 0 };
}

test("pseudo-labels: correct ones, de-duplicated against gold and earlier rounds, capped at the 90th percentile", () => {
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9);
  assert.equal(percentile([4], 90), 4);
  const goldText = new Map([["a", "x = <<1+1=2>>2 #### 2"], ["b", "y"], ["c", "z"]]);
  const variants = ["one two three four", "five six seven eight", "nine ten eleven twelve", "red green blue black", "north south east west", "spring summer autumn winter", "cat dog cow pig", "oak elm ash fir", "mon tue wed thu", "jan feb mar apr", "do re mi fa", "up down left right"];
  const smp: SampleRecord[] = [
    ...variants.map((v, i) => sample(`a${i}`, "a", v, true)),
    sample("aw", "a", "wrong one", false),
    sample("ag", "a", "x = <<1+1=2>>2 #### 2", true),
    sample("b1", "b", "b first", true),
    sample("b2", "b", "b first", true),
    sample("c1", "c", "c only", true),
  ];
  const earlier: PseudoLabelRecord[] = [{ questionId: "c", question: "c", hash: "c0", rationale: "c from round one", source: "automatic", round: 1 }];
  const r = selectPseudoLabels(smp, earlier, goldText, NO_DECISIONS, 2, { capPercentile: 90 });
  const per = (id: string): number => r.labels.filter((l) => l.questionId === id).length;
  // Per-question counts after de-duplication: a 12, b 1, c 2 → 90th percentile 12 … so no cut here.
  assert.deepEqual([per("a"), per("b"), per("c")], [12, 1, 2]);
  assert.ok(!r.labels.some((l) => l.hash === "aw" || l.hash === "ag" || l.hash === "b2"));
  // With 20 more questions of one label each, counts are twenty-one 1s, a 2 and a 12: the 90th percentile
  // (nearest rank 21 of 23) is 1, so questions a and c are cut to one label each.
  const many = [...smp, ...Array.from({ length: 20 }, (_, i) => sample(`m${i}`, `m${i}`, `only ${i}`, true))];
  const capped = selectPseudoLabels(many, earlier, goldText, NO_DECISIONS, 2, { capPercentile: 90 });
  assert.equal(capped.counts.cap, 1);
  assert.equal(capped.labels.filter((l) => l.questionId === "a").length, 1);
  assert.equal(capped.labels.filter((l) => l.questionId === "c").length, 1);
  assert.equal(capped.counts.afterDedup, 12 + 1 + 2 + 20);

  const human: HumanDecisions = { ...NO_DECISIONS, verdicts: new Map([["aw", "correct"], ["b1", "wrong"]]), added: [{ questionId: "b", question: "b", rationale: "a person's own", hash: "hb" }], excluded: new Set(["c0"]) };
  const h = selectPseudoLabels(smp, earlier, goldText, human, 2, { capPercentile: 90 });
  assert.ok(h.labels.some((l) => l.hash === "aw"), "marked correct is kept");
  assert.deepEqual(h.labels.filter((l) => l.questionId === "b").map((l) => [l.hash, l.source]), [["hb", "human"], ["b2", "automatic"]]);
  assert.ok(!h.labels.some((l) => l.hash === "c0"), "excluded earlier label kept");
});
