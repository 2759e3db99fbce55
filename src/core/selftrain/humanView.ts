import type { ReviewLog } from "../store/reviewLog";

/** The effective human decisions, as the round's selection rules need them (built from the review log). */
export interface HumanDecisions {
  /** Latest verdict per content hash: overrides the answer check. */
  verdicts: ReadonlyMap<string, "correct" | "wrong">;
  /** Content hashes a person excluded from training. */
  excluded: ReadonlySet<string>;
  forcedPairs: ReadonlyArray<{ questionId: string; chosenHash: string; rejectedHash: string }>;
  /** `chosenHash>rejectedHash` keys of pairs a person excluded. */
  excludedPairs: ReadonlySet<string>;
  /** Hand-written rationales: positives. */
  added: ReadonlyArray<{ questionId: string; question: string; rationale: string; hash: string }>;
}

export const NO_DECISIONS: HumanDecisions = { verdicts: new Map(), excluded: new Set(), forcedPairs: [], excludedPairs: new Set(), added: [] };



/**
 * What the review log decides for a round's selection. A hand-written rationale the arithmetic check questioned
 * when it was saved is not a positive until the person confirms it.
 */
export function humanDecisions(log: ReviewLog): HumanDecisions {
  const effective = log.effective();
  return {
    verdicts: log.sampleVerdicts(effective), excluded: log.excludedSamples(effective), forcedPairs: log.forcedPairs(effective),
    excludedPairs: log.excludedPairs(effective), added: log.addedRationales(effective).filter((a) => a.confirmed),
  };
}
