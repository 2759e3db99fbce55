import { existsSync } from "node:fs";
import { contentHash } from "../store/hash";
import type { RunStore } from "../store/runStore";
import { pairKey, type EffectiveEntry, type ReviewLog } from "../store/reviewLog";
import type { SampleRecord, PairRecord, PseudoLabelRecord } from "../../shared/runTypes";
import type { ReviewDecisionView, ReviewPair, ReviewQuestion, ReviewSample, SampleRole } from "../../shared/reviewProtocol";
import { recordsOfQuestion, findGoldExample } from "./questionRecords";
import { rationaleSpans, calcCounts } from "./rationaleSpans";
import { wordDiff } from "./wordDiff";
import { dropReason, pairFate } from "../store/pairFate";

export interface ReviewSources {
  store: RunStore;
  round: number;
  reviews: ReviewLog;
  /** The run's data files (train, test), to show the gold rationale. */
  dataFiles: readonly string[];
}

/** Both sampling steps' files of a round, the one the explorer shows first. */
export const SAMPLE_FILES = [["samples-dpo.jsonl", "dpo"], ["samples-sft.jsonl", "sft"]] as const;

/**
 * Everything the review shows for one question of a round: the gold rationale, every sampled rationale with
 * its arithmetic checked, the pairs built (and what a person has decided about them since), the rationales a
 * person wrote, and the decisions in force. Only this question's lines are read.
 */
export async function buildReviewQuestion(src: ReviewSources, questionId: string, preloaded?: { file: string; records: readonly SampleRecord[] }): Promise<ReviewQuestion | null> {
  const { store, round } = src;
  const perFile = await Promise.all(SAMPLE_FILES.map(async ([file, stage]) => {
    const records = preloaded?.file === file ? preloaded.records : await recordsOfQuestion<SampleRecord>(store.path(round, file), questionId);
    return records.map((r) => ({ r, stage }));
  }));
  const sampled = perFile.flat();
  const [pairs, labels, gold] = await Promise.all([
    recordsOfQuestion<PairRecord>(store.path(round, "pairs.jsonl"), questionId),
    recordsOfQuestion<PseudoLabelRecord>(store.path(round, "pseudo-labels.jsonl"), questionId),
    findGoldExample(src.dataFiles.filter((f) => f && existsSync(f)), questionId),
  ]);
  const first = sampled[0]?.r;
  const question = first?.question ?? gold?.question ?? pairs[0]?.question;
  const goldAnswer = first?.gold ?? gold?.answer;
  if (question === undefined || goldAnswer === undefined) return null;

  const effective = src.reviews.effective();
  const verdicts = src.reviews.sampleVerdicts(effective);
  const excluded = src.reviews.excludedSamples(effective);
  const notes = src.reviews.notes(effective);
  const written = src.reviews.addedRationales(effective).filter((a) => a.questionId === questionId);
  const goldHash = gold ? contentHash(gold.question, gold.rationale) : null;

  const labelOf = new Map<string, string>();
  const textOf = new Map<string, string>();
  if (gold && goldHash) {
    labelOf.set(goldHash, "gold");
    textOf.set(goldHash, gold.rationale);
  }
  written.forEach((w, i) => {
    labelOf.set(w.hash, written.length > 1 ? `your rationale ${i + 1}` : "your rationale");
    textOf.set(w.hash, w.rationale);
  });
  for (const { r, stage } of sampled) {
    if (!labelOf.has(r.hash)) labelOf.set(r.hash, stage === "dpo" ? `sample ${r.index + 1}` : `SFT-step sample ${r.index + 1}`);
    textOf.set(r.hash, r.rationale);
  }
  const label = (hash: string): string => labelOf.get(hash) ?? `earlier round's sample ${hash.slice(0, 6)}`;

  const ours = new Set<string>(labelOf.keys());
  for (const p of pairs) {
    ours.add(p.chosenHash);
    ours.add(p.rejectedHash);
    textOf.set(p.chosenHash, p.chosen);
    textOf.set(p.rejectedHash, p.rejected);
  }
  const concerns = (e: EffectiveEntry): boolean => {
    switch (e.kind) {
      case "force-pair":
      case "add-rationale":
        return e.questionId === questionId;
      case "exclude-pair":
        return ours.has(e.chosenHash) || ours.has(e.rejectedHash);
      default:
        return ours.has(e.hash);
    }
  };
  const mine = effective.filter(concerns);
  const touched = src.reviews.touched(mine).hashes;

  const roles = new Map<string, SampleRole[]>();
  const addRole = (hash: string, role: SampleRole): void => {
    const list = roles.get(hash) ?? [];
    if (!list.includes(role)) list.push(role);
    roles.set(hash, list);
  };
  for (const p of pairs) {
    addRole(p.chosenHash, "chosen");
    addRole(p.rejectedHash, "rejected");
  }
  for (const l of labels) addRole(l.hash, "pseudo-label");

  const samples: ReviewSample[] = sampled.map(({ r, stage }) => {
    const spans = rationaleSpans(r.rationale, r.gold, r.calculatorCalls);
    const c = calcCounts(spans);
    const verdict = verdicts.get(r.hash) ?? null;
    return {
      hash: r.hash, stage, number: r.index + 1, spans, answer: r.answer, autoCorrect: r.correct,
      correct: verdict ? verdict === "correct" : r.correct, verdict, excluded: excluded.has(r.hash), notes: notes.get(r.hash) ?? [],
      roles: roles.get(r.hash) ?? [], logProb: r.logProb, calcTotal: c.total, calcOk: c.ok, calcForced: c.forced,
      unfinished: !r.finished, decidedByPerson: touched.has(r.hash),
    };
  });

  const excludedPairs = src.reviews.excludedPairs(effective);
  const forced = src.reviews.forcedPairs(effective).filter((f) => f.questionId === questionId);
  const forcedKey = new Set(forced.map((f) => pairKey(f.chosenHash, f.rejectedHash)));
  const builtKey = new Set(pairs.map((p) => pairKey(p.chosenHash, p.rejectedHash)));
  const diffOf = (chosenHash: string, rejectedHash: string) => {
    const c = textOf.get(chosenHash);
    const r = textOf.get(rejectedHash);
    return c !== undefined && r !== undefined ? wordDiff(r, c) : [];
  };
  const inForce = { verdicts, excluded, excludedPairs, forced: forcedKey };
  const pairViews: ReviewPair[] = pairs.map((p): ReviewPair => {
    const similarity = p.similarity;
    const fate = pairFate(p, inForce);
    // A swap is one pair, shown the way round the next round builds it.
    if (fate.status === "swapped") {
      return {
        chosenHash: p.rejectedHash, rejectedHash: p.chosenHash, chosenLabel: label(p.rejectedHash), rejectedLabel: label(p.chosenHash),
        origin: "person", status: "swapped", nextRound: "swapped by you · this way round next round", similarity, diff: wordDiff(p.chosen, p.rejected),
      };
    }
    const base = { chosenHash: p.chosenHash, rejectedHash: p.rejectedHash, chosenLabel: label(p.chosenHash), rejectedLabel: label(p.rejectedHash), similarity, diff: wordDiff(p.rejected, p.chosen) };
    if (fate.status === "excluded") return { ...base, origin: "built", status: "excluded", nextRound: "excluded by you · not used next round" };
    if (fate.status === "set") return { ...base, origin: "person", status: "active", nextRound: "set by you · used next round" };
    if (fate.status === "dropped") return { ...base, origin: "built", status: "dropped", nextRound: `dropped next round: ${dropReason(fate, label(fate.side === "chosen" ? p.chosenHash : p.rejectedHash))}` };
    return { ...base, origin: "built", status: "active", nextRound: "built automatically" };
  });
  for (const f of forced) {
    if (builtKey.has(pairKey(f.chosenHash, f.rejectedHash)) || builtKey.has(pairKey(f.rejectedHash, f.chosenHash))) continue;
    pairViews.push({
      chosenHash: f.chosenHash, rejectedHash: f.rejectedHash, chosenLabel: label(f.chosenHash), rejectedLabel: label(f.rejectedHash),
      origin: "person", status: "active", nextRound: "set by you · used next round", similarity: null, diff: diffOf(f.chosenHash, f.rejectedHash),
    });
  }

  const decisions: ReviewDecisionView[] = mine.map((e) => ({ id: e.id, at: e.at, summary: describeDecision(e, label) }));
  return {
    runId: store.manifest.runId, round, questionId, question, goldAnswer,
    gold: gold && goldHash ? { hash: goldHash, spans: rationaleSpans(gold.rationale, goldAnswer) } : null,
    samples, pairs: pairViews,
    written: written.map((w) => ({ hash: w.hash, spans: rationaleSpans(w.rationale, goldAnswer), problems: w.problems, confirmed: w.confirmed })),
    decisions,
  };
}

/** One line per decision, as the review lists them: "marked sample 3 wrong". */
export function describeDecision(e: EffectiveEntry, label: (hash: string) => string): string {
  switch (e.kind) {
    case "mark":
      return `marked ${label(e.hash)} ${e.verdict === "correct" ? "right" : "wrong"}`;
    case "exclude-sample":
      return `excluded ${label(e.hash)} from training`;
    case "include-sample":
      return `included ${label(e.hash)} again`;
    case "force-pair":
      return `set ${label(e.chosenHash)} ≻ ${label(e.rejectedHash)}`;
    case "exclude-pair":
      return `excluded the pair ${label(e.chosenHash)} ≻ ${label(e.rejectedHash)}`;
    case "add-rationale":
      return e.unconfirmed?.length ? `wrote a rationale (held: ${e.unconfirmed.join("; ")})` : "wrote a rationale";
    case "confirm-rationale":
      return `confirmed ${label(e.hash)} as written`;
    case "note":
      return `note on ${label(e.hash)}: ${e.text}`;
  }
}
