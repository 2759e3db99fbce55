import { pairKey } from "./reviewLog";

/** The decisions in force that decide what the next round does with a round's pairs and samples. */
export interface NextRoundDecisions {
  verdicts: ReadonlyMap<string, "correct" | "wrong">;
  excluded: ReadonlySet<string>;
  /** pairKey(chosen, rejected) of pairs a person excluded. */
  excludedPairs: ReadonlySet<string>;
  /** pairKey(chosen, rejected) of pairs a person set (forced). */
  forced: ReadonlySet<string>;
}

/**
 * What the next round does with a built pair, as the pair builder (selftrain/pairs.ts) will: `swapped` (a person
 * forced the other direction), `excluded`, `set` (forced, or a person's pair), `dropped` (a person's verdict or
 * exclusion on one side: `why`), or `built` (it stands as built automatically).
 */
export type PairFate =
  | { status: "swapped" | "excluded" | "set" | "built" }
  | { status: "dropped"; side: "chosen" | "rejected"; why: "excluded" | "marked wrong" | "marked right" };

export function pairFate(p: { chosenHash: string; rejectedHash: string; source: "automatic" | "human" }, d: NextRoundDecisions): PairFate {
  if (d.forced.has(pairKey(p.rejectedHash, p.chosenHash))) return { status: "swapped" };
  if (d.excludedPairs.has(pairKey(p.chosenHash, p.rejectedHash))) return { status: "excluded" };
  if (d.forced.has(pairKey(p.chosenHash, p.rejectedHash)) || p.source === "human") return { status: "set" };
  if (d.excluded.has(p.chosenHash)) return { status: "dropped", side: "chosen", why: "excluded" };
  if (d.excluded.has(p.rejectedHash)) return { status: "dropped", side: "rejected", why: "excluded" };
  if (d.verdicts.get(p.chosenHash) === "wrong") return { status: "dropped", side: "chosen", why: "marked wrong" };
  if (d.verdicts.get(p.rejectedHash) === "correct") return { status: "dropped", side: "rejected", why: "marked right" };
  return { status: "built" };
}

/** Why a dropped pair is dropped, in the review's words: "you marked its rejected side, sample 3, right". */
export function dropReason(f: Extract<PairFate, { status: "dropped" }>, label: string): string {
  if (f.why === "excluded") return `you excluded ${label}`;
  return `you marked its ${f.side} side, ${label}, ${f.why === "marked wrong" ? "wrong" : "right"}`;
}

/**
 * What the next round does with one sample: left out (excluded), or a positive or a negative for its pairs, by a
 * person's verdict over the answer check (as pairs.ts's isPositive). A pseudo-label stays in the pool unless it is
 * excluded or marked wrong (pseudoLabels.ts).
 */
export function sampleUse(hash: string, autoCorrect: boolean, d: NextRoundDecisions): "left out" | "positive" | "negative" {
  if (d.excluded.has(hash)) return "left out";
  const v = d.verdicts.get(hash);
  return v === "correct" || (v !== "wrong" && autoCorrect) ? "positive" : "negative";
}
