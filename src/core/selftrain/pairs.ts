import { deduplicate, jaccard, tokenSet, DUPLICATE_THRESHOLD } from "./similarity";
import type { HumanDecisions } from "./humanView";
import { pairKey } from "../store/reviewLog";
import type { PairRecord } from "../../shared/runTypes";

/** A rationale that may enter a pair: the gold one, a sampled one (any round so far), or a person's. */
export interface Candidate {
  hash: string;
  questionId: string;
  question: string;
  rationale: string;
  /** By the answer check (gold and hand-written ones are correct). */
  correct: boolean;
  origin: "gold" | "sample" | "human";
}

export interface PairSettings {
  /** Automatic pairs kept per question: the least similar positive × negative ones (paper: 3). */
  maxPairsPerQuestion: number;
  duplicateThreshold?: number;
}

export interface PairBuildResult {
  pairs: PairRecord[];
  counts: { questions: number; positives: number; negatives: number; questionsWithoutNegative: number; automatic: number; human: number };
}

/**
 * The DPO step's pair building (method.md, steps 2–4), with human decisions on top: a person's verdict
 * replaces the answer check, excluded rationales and pairs are left out, forced pairs are always built
 * (beside the automatic ones, which never include a forced pair's opposite direction: that is a swap), and
 * hand-written rationales are positives.
 * `candidates` hold, per question, the gold rationale first and then every sample of every round so far.
 */
export function buildPairs(candidates: readonly Candidate[], human: HumanDecisions, round: number, s: PairSettings): PairBuildResult {
  const threshold = s.duplicateThreshold ?? DUPLICATE_THRESHOLD;
  const byQuestion = new Map<string, Candidate[]>();
  const byHash = new Map<string, Candidate>();
  const push = (c: Candidate): void => {
    if (!byQuestion.has(c.questionId)) byQuestion.set(c.questionId, []);
    byQuestion.get(c.questionId)!.push(c);
    if (!byHash.has(c.hash)) byHash.set(c.hash, c);
  };
  for (const c of candidates) push(c);
  for (const a of human.added) push({ ...a, correct: true, origin: "human" });

  const pairs: PairRecord[] = [];
  const counts = { questions: byQuestion.size, positives: 0, negatives: 0, questionsWithoutNegative: 0, automatic: 0, human: 0 };
  const record = (c: Candidate, r: Candidate, source: PairRecord["source"]): PairRecord => ({
    questionId: c.questionId,
    question: c.question,
    chosenHash: c.hash,
    rejectedHash: r.hash,
    chosen: c.rationale,
    rejected: r.rationale,
    similarity: jaccard(tokenSet(c.rationale), tokenSet(r.rationale)),
    source,
    round,
  });

  for (const [questionId, all] of byQuestion) {
    const forced = human.forcedPairs.filter((f) => f.questionId === questionId && !human.excludedPairs.has(pairKey(f.chosenHash, f.rejectedHash)));
    const built = new Set<string>();
    for (const f of forced) {
      const c = byHash.get(f.chosenHash);
      const r = byHash.get(f.rejectedHash);
      if (!c || !r || built.has(pairKey(c.hash, r.hash))) continue;
      built.add(pairKey(c.hash, r.hash));
      pairs.push(record(c, r, "human"));
      counts.human++;
    }
    const unique = [...new Map(all.map((c) => [c.hash, c])).values()].filter((c) => !human.excluded.has(c.hash));
    const isPositive = (c: Candidate): boolean => human.verdicts.get(c.hash) === "correct" || (human.verdicts.get(c.hash) !== "wrong" && c.correct);
    // Gold and people's rationales come first, so de-duplication keeps them over sampled look-alikes.
    const rank = (c: Candidate): number => (c.origin === "sample" ? 1 : 0);
    const positives = deduplicate(unique.filter(isPositive).sort((a, b) => rank(a) - rank(b)), (c) => c.rationale, threshold);
    const negatives = deduplicate(unique.filter((c) => !isPositive(c)), (c) => c.rationale, threshold);
    counts.positives += positives.length;
    counts.negatives += negatives.length;
    if (negatives.length === 0) {
      counts.questionsWithoutNegative++;
      continue;
    }
    const options: Array<{ c: Candidate; r: Candidate; sim: number }> = [];
    const negSets = negatives.map((r) => tokenSet(r.rationale));
    for (const c of positives) {
      const cs = tokenSet(c.rationale);
      negatives.forEach((r, j) => {
        const key = pairKey(c.hash, r.hash);
        // A forced pair the other way round is a person's swap: the automatic direction is what they overrode.
        if (!human.excludedPairs.has(key) && !built.has(key) && !built.has(pairKey(r.hash, c.hash))) options.push({ c, r, sim: jaccard(cs, negSets[j]!) });
      });
    }
    // Least similar first; ties broken by hashes so the result does not depend on input order.
    options.sort((a, b) => a.sim - b.sim || pairKey(a.c.hash, a.r.hash).localeCompare(pairKey(b.c.hash, b.r.hash)));
    for (const o of options.slice(0, s.maxPairsPerQuestion)) {
      pairs.push(record(o.c, o.r, "automatic"));
      counts.automatic++;
    }
  }
  return { pairs, counts };
}
