import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { ReviewDecision, ReviewEntry } from "../../shared/runTypes";
import { appendJsonlSync, keptTornFiles, readJsonlSync, tornFields } from "./jsonl";
import { isRecord as isObject } from "../../shared/messageGuards";

/** A decision still in force: undos are applied, so they are not among these. */
export type EffectiveEntry = Exclude<ReviewEntry, { kind: "undo" }>;

export interface ForcedPair {
  questionId: string;
  chosenHash: string;
  rejectedHash: string;
  /** Id of the review entry that forced it. */
  id: string;
}

export interface AddedRationale {
  questionId: string;
  question: string;
  rationale: string;
  hash: string;
  id: string;
  /** What the arithmetic check found when it was saved (empty: nothing). */
  problems: string[];
  /** Used as a positive: the check found nothing, or the person confirmed it as written. */
  confirmed: boolean;
}

/** The string fields each kind needs; a line missing one is refused when read and when appended. */
const FIELDS: Record<ReviewDecision["kind"], readonly string[]> = {
  mark: ["verdict", "hash"],
  "exclude-sample": ["hash"],
  "include-sample": ["hash"],
  "force-pair": ["questionId", "chosenHash", "rejectedHash"],
  "exclude-pair": ["chosenHash", "rejectedHash"],
  "add-rationale": ["questionId", "question", "rationale", "hash"],
  "confirm-rationale": ["hash"],
  note: ["hash", "text"],
  undo: ["decisionId"],
};

/** Throws with the reason (readJsonl adds file:line). */
function checkDecision(v: unknown): asserts v is ReviewDecision {
  if (!isObject(v)) throw new Error("expected a JSON object");
  const kind = v["kind"];
  if (typeof kind !== "string" || !Object.hasOwn(FIELDS, kind)) {
    throw new Error(`unknown review kind ${JSON.stringify(kind)} (known: ${Object.keys(FIELDS).join(", ")})`);
  }
  for (const field of FIELDS[kind as ReviewDecision["kind"]]) {
    if (typeof v[field] !== "string" || v[field] === "") {
      throw new Error(`"${kind}" needs a non-empty string "${field}"`);
    }
  }
  if (kind === "add-rationale" && v["unconfirmed"] !== undefined && !(Array.isArray(v["unconfirmed"]) && v["unconfirmed"].every((x) => typeof x === "string"))) {
    throw new Error(`"add-rationale" unconfirmed must be a list of strings`);
  }
  if (kind === "mark" && v["verdict"] !== "correct" && v["verdict"] !== "wrong") {
    throw new Error(`"mark" verdict must be "correct" or "wrong", not ${JSON.stringify(v["verdict"])}`);
  }
}

function checkEntry(v: unknown): ReviewEntry {
  checkDecision(v);
  const entry = v as Record<string, unknown>;
  for (const field of ["id", "at"]) {
    if (typeof entry[field] !== "string" || entry[field] === "") {
      throw new Error(`entry needs a non-empty string "${field}"`);
    }
  }
  if (entry["note"] !== undefined && typeof entry["note"] !== "string") throw new Error(`"note" must be a string`);
  return v as ReviewEntry;
}

/**
 * A decision an interrupted write cut off: it is not in force, so the person must make it again. What could be
 * read of it names it; its bytes are kept (at the end of reviews.jsonl until the next decision moves them to
 * `reviews.jsonl.torn-<time>`, then in that file until the person deletes it).
 */
export interface LostDecision {
  /** The file holding the torn bytes: reviews.jsonl itself, or a reviews.jsonl.torn-<time> beside it. */
  file: string;
  /** Its line in reviews.jsonl, while it is still there. */
  line?: number;
  kind?: string;
  verdict?: string;
  questionId?: string;
  hash?: string;
  /** When it was made, where that much was written. */
  at?: string;
  /** One sentence for the person: which decision, where its bytes are, what to do. */
  message: string;
}

/** What reading the review log found: the entries, and the decisions torn writes cut off (never left out silently). */
export interface ReviewLogContents {
  entries: ReviewEntry[];
  lost: LostDecision[];
}

function lostDecision(file: string, text: string, line: number | undefined, log: string): LostDecision {
  const f = tornFields(text);
  const str = (k: string): string | undefined => (typeof f[k] === "string" ? (f[k] as string) : undefined);
  const lost: LostDecision = { file, message: "" };
  if (line !== undefined) lost.line = line;
  for (const k of ["kind", "verdict", "questionId", "hash", "at"] as const) {
    const v = str(k);
    if (v !== undefined) lost[k] = v;
  }
  const what = [
    lost.kind === undefined ? "a decision (its kind was cut off)" : `"${lost.kind}"${lost.verdict ? ` ${lost.verdict}` : ""}`,
    lost.hash ? `of sample ${lost.hash.slice(0, 12)}` : str("chosenHash") ? `of pair ${str("chosenHash")!.slice(0, 12)}>${(str("rejectedHash") ?? "?").slice(0, 12)}` : "",
    lost.questionId ? `(question ${lost.questionId})` : "",
    lost.at ? `made ${lost.at}` : "",
  ].filter(Boolean).join(" ");
  const where = line !== undefined ? `${log}:${line} (the next decision moves its bytes to ${basename(log)}.torn-<time>)` : file;
  const done = line !== undefined ? "" : `, then delete ${basename(file)}`;
  lost.message = `a review decision was cut off by an interrupted write and is not in force: ${what}; its bytes are kept in ${where}. Make that decision again${done}`;
  return lost;
}

/** The key of a preference pair, `chosenHash>rejectedHash`: the one spelling every set of pairs uses. */
export function pairKey(chosenHash: string, rejectedHash: string): string {
  return `${chosenHash}>${rejectedHash}`;
}
/** Both directions of a pair: forcing B>A after A>B is a swap, a later decision on the same target. */
const unorderedKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

/**
 * The human review log, `.selftrain/reviews.jsonl`: append-only, one decision per line, keyed by content hash.
 * Nothing rewrites it; later decisions on the same target win and an undo retracts one entry. Every append is
 * fsynced before it returns, so a decision the user saw accepted survives a crash.
 */
export class ReviewLog {
  readonly path: string;

  constructor(selftrainDir: string) {
    this.path = join(selftrainDir, "reviews.jsonl");
  }

  /** Records one decision; it is checked first so that a bad caller cannot make the log unreadable. */
  append(decision: ReviewDecision, note?: string): ReviewEntry {
    checkDecision(decision);
    const entry: ReviewEntry = { ...decision, id: randomUUID(), at: new Date().toISOString() };
    if (note !== undefined) entry.note = note;
    appendJsonlSync(this.path, entry);
    return entry;
  }

  /** Every entry in order; a torn last line (a crash mid-append) is not a decision and is left out (read() names it). */
  entries(): ReviewEntry[] {
    return this.read().entries;
  }

  /**
   * The entries, and every decision a torn write cut off: the torn last line of the log, and those that earlier
   * appends moved aside to `reviews.jsonl.torn-<time>` (listed until the person deletes the file). A person's
   * decision is never dropped without a word: the host and the CLI show `lost`.
   */
  read(): ReviewLogContents {
    const { records, tornLine, tornText } = readJsonlSync(this.path, { validate: checkEntry });
    const lost: LostDecision[] = [];
    for (const file of keptTornFiles(this.path)) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch {
        continue; // deleted meanwhile: the person redid it
      }
      if (text.trim() !== "") lost.push(lostDecision(file, text, undefined, this.path));
    }
    // Spaces without a newline are no decision.
    if (tornLine !== undefined && tornText !== undefined && tornText.trim() !== "") lost.push(lostDecision(this.path, tornText, tornLine, this.path));
    return { entries: records, lost };
  }

  /**
   * The entries still in force, in order. Walking backwards works because an undo always comes after what it
   * undoes: by the time an entry is reached, every undo that could retract it has been decided.
   */
  effective(entries: readonly ReviewEntry[] = this.entries()): EffectiveEntry[] {
    const retracted = new Set<string>();
    const kept: EffectiveEntry[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (retracted.has(e.id)) continue;
      if (e.kind === "undo") retracted.add(e.decisionId);
      else kept.push(e);
    }
    return kept.reverse();
  }

  /** The latest verdict per sample hash. */
  sampleVerdicts(effective: readonly EffectiveEntry[] = this.effective()): Map<string, "correct" | "wrong"> {
    const verdicts = new Map<string, "correct" | "wrong">();
    for (const e of effective) if (e.kind === "mark") verdicts.set(e.hash, e.verdict);
    return verdicts;
  }

  /**
   * What a person's decisions touch: sample hashes (marks, exclusions, notes, both sides of a pair decision) and
   * question ids (forced pairs, written rationales). "Decided by you" in the explorer and the review is these.
   */
  touched(effective: readonly EffectiveEntry[] = this.effective()): { hashes: Set<string>; questions: Set<string> } {
    const hashes = new Set<string>();
    const questions = new Set<string>();
    for (const e of effective) {
      if (e.kind === "force-pair" || e.kind === "exclude-pair") {
        hashes.add(e.chosenHash);
        hashes.add(e.rejectedHash);
        if (e.kind === "force-pair") questions.add(e.questionId);
      } else if (e.kind === "add-rationale") questions.add(e.questionId);
      else hashes.add(e.hash);
    }
    return { hashes, questions };
  }

  /** Sample hashes whose latest exclude/include decision is exclude. */
  excludedSamples(effective: readonly EffectiveEntry[] = this.effective()): Set<string> {
    const excluded = new Set<string>();
    for (const e of effective) {
      if (e.kind === "exclude-sample") excluded.add(e.hash);
      else if (e.kind === "include-sample") excluded.delete(e.hash);
    }
    return excluded;
  }

  /**
   * Pairs a person set. For the same two samples the latest decision wins: a swap (force B>A after A>B)
   * replaces the earlier direction, and a later exclude-pair of the forced direction drops it.
   */
  forcedPairs(effective: readonly EffectiveEntry[] = this.effective()): ForcedPair[] {
    const forced = new Map<string, ForcedPair>();
    for (const e of effective) {
      if (e.kind !== "force-pair" && e.kind !== "exclude-pair") continue;
      const key = unorderedKey(e.chosenHash, e.rejectedHash);
      const current = forced.get(key);
      if (e.kind === "force-pair") {
        forced.set(key, { questionId: e.questionId, chosenHash: e.chosenHash, rejectedHash: e.rejectedHash, id: e.id });
      } else if (current && current.chosenHash === e.chosenHash && current.rejectedHash === e.rejectedHash) {
        forced.delete(key);
      }
    }
    return [...forced.values()];
  }

  /** "chosenHash>rejectedHash" of pairs whose latest decision is exclude-pair (a later force-pair lifts it). */
  excludedPairs(effective: readonly EffectiveEntry[] = this.effective()): Set<string> {
    const excluded = new Set<string>();
    for (const e of effective) {
      if (e.kind === "exclude-pair") excluded.add(pairKey(e.chosenHash, e.rejectedHash));
      else if (e.kind === "force-pair") excluded.delete(pairKey(e.chosenHash, e.rejectedHash));
    }
    return excluded;
  }

  /**
   * Hand-written rationales, one per hash (adding the same text twice keeps the latest). One the arithmetic check
   * questioned when it was saved is listed with `confirmed: false` until a confirm-rationale for its hash; the
   * round's selection uses only confirmed ones.
   */
  addedRationales(effective: readonly EffectiveEntry[] = this.effective()): AddedRationale[] {
    const added = new Map<string, AddedRationale>();
    const confirmed = new Set<string>();
    for (const e of effective) {
      if (e.kind === "confirm-rationale") confirmed.add(e.hash);
      if (e.kind !== "add-rationale") continue;
      const { questionId, question, rationale, hash, id } = e;
      const problems = e.unconfirmed ?? [];
      added.set(hash, { questionId, question, rationale, hash, id, problems, confirmed: problems.length === 0 });
    }
    return [...added.values()].map((a) => (confirmed.has(a.hash) ? { ...a, confirmed: true } : a));
  }

  /** Texts of "note" entries per sample hash, oldest first. */
  notes(effective: readonly EffectiveEntry[] = this.effective()): Map<string, string[]> {
    const notes = new Map<string, string[]>();
    for (const e of effective) {
      if (e.kind !== "note") continue;
      const list = notes.get(e.hash);
      if (list) list.push(e.text);
      else notes.set(e.hash, [e.text]);
    }
    return notes;
  }
}
