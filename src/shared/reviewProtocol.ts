/**
 * The rationale review's messages between the extension host and its webview. The host owns the state (the
 * run store and the review log on disk) and posts views of it; the webview renders them and sends the user's
 * actions back. Every incoming message is checked by `checkReviewMessage` before the host acts on it.
 */
import { checkMessage, MessageError, type Checked, type Fields } from "./messageGuards";

export const REVIEW_FILTERS = ["all", "mixed", "all-wrong", "all-right", "disagreement", "decided"] as const;
/** Which questions the queue walks: by the answer check's outcome, by disagreement between the answer check
 * and the arithmetic check (a right answer reached with wrong arithmetic), or those a person decided. */
export type ReviewFilter = (typeof REVIEW_FILTERS)[number];

/** A piece of a rationale as the review shows it. */
export type RationaleSpan =
  | { kind: "text"; text: string }
  /** A `<<expr=result>>` annotation, checked by the calculator. */
  | {
      kind: "calc";
      text: string;
      expression: string;
      written: string;
      status: "ok" | "wrong" | "unparseable" | "bad-result";
      /** What the result should be, for wrong arithmetic. */
      expected?: string;
      /** The sampler forced this result with the calculator. */
      forced: boolean;
      /** The number the text goes on with right after `>>`, when it is not the result (`<<3-2=1>>2`). */
      copiedAs?: string;
    }
  /** The `#### N` final-answer line. */
  | { kind: "answer"; text: string; correct: boolean };

export type SampleRole = "chosen" | "rejected" | "pseudo-label";

export interface ReviewSample {
  hash: string;
  /** Which sampling step of the round wrote it. */
  stage: "dpo" | "sft";
  /** 1-based, as the explorer numbers them. */
  number: number;
  spans: RationaleSpan[];
  answer: number | null;
  /** What the answer check said. */
  autoCorrect: boolean;
  /** After a person's verdict, when there is one. */
  correct: boolean;
  verdict: "correct" | "wrong" | null;
  excluded: boolean;
  notes: string[];
  roles: SampleRole[];
  logProb: number;
  calcTotal: number;
  calcOk: number;
  calcForced: number;
  /** Sampling stopped at the token limit before a final answer. */
  unfinished: boolean;
  /** A person decided something about this sample. */
  decidedByPerson: boolean;
}

/**
 * A part of a word diff. `spaceAfter`: show a space after this part that neither text has there; without it a
 * removed last word runs into the added one ("2426", "themWeng"), since a text's last word has no space after it.
 */
export type DiffPart = { op: "same" | "added" | "removed"; text: string; spaceAfter?: true };

export interface ReviewPair {
  chosenHash: string;
  rejectedHash: string;
  /** "sample 2", "gold", "your rationale", "round 1 sample 3" … */
  chosenLabel: string;
  rejectedLabel: string;
  /** Built by this round (from pairs.jsonl), or decided by a person for the next round. */
  origin: "built" | "person";
  /**
   * What the review log says about it now. A swapped pair is shown the way round the next round builds it
   * (chosen and rejected as swapped); a dropped one is a built pair the next round will not build again,
   * because of a verdict or exclusion on one of its sides.
   */
  status: "active" | "excluded" | "swapped" | "dropped";
  /** One line on what the next round does with it: "used next round", "dropped next round: you marked sample 2 wrong". */
  nextRound: string;
  similarity: number | null;
  /** Word diff from rejected to chosen. */
  diff: DiffPart[];
}

export interface ReviewDecisionView {
  id: string;
  at: string;
  /** One line: "marked sample 3 wrong". */
  summary: string;
}

export interface ReviewQuestion {
  runId: string;
  round: number;
  questionId: string;
  question: string;
  goldAnswer: number;
  /** The gold rationale, when the data set file is at hand. */
  gold: { hash: string; spans: RationaleSpan[] } | null;
  samples: ReviewSample[];
  pairs: ReviewPair[];
  /**
   * Rationales a person wrote for this question. One the arithmetic check questioned when it was saved lists its
   * problems and is not used for training until confirmed.
   */
  written: Array<{ hash: string; spans: RationaleSpan[]; problems: string[]; confirmed: boolean }>;
  decisions: ReviewDecisionView[];
}

export interface ReviewQueue {
  filter: ReviewFilter;
  /** 0-based position of the shown question in the filtered queue; null while the queue is being built. */
  position: number | null;
  total: number | null;
  counts: Partial<Record<ReviewFilter, number>>;
}

export interface ReviewRunChoice {
  runId: string;
  mode: string;
  /** Rounds with samples to review. */
  rounds: number[];
}

export type ReviewHostMessage =
  | {
      type: "state";
      runs: ReviewRunChoice[];
      runId: string | null;
      round: number | null;
      queue: ReviewQueue;
      question: ReviewQuestion | null;
      /** Why there is no question to show. */
      empty?: string;
      /** A rationale to bring into view and focus (opened from the explorer or a CodeLens on it). */
      focusHash?: string;
    }
  | { type: "queue"; queue: ReviewQueue }
  | { type: "notice"; level: "info" | "warn" | "error"; text: string };

const FROM_HOST_TYPES: ReadonlySet<string> = new Set<ReviewHostMessage["type"]>(["state", "queue", "notice"]);

/**
 * The review webview's check of what it receives, as the dashboard's (isDashboardFromHost): the host is our own
 * code, so the tag is what is verified (another frame of the page may post too).
 */
export function isReviewFromHost(raw: unknown): raw is ReviewHostMessage {
  return typeof raw === "object" && raw !== null && FROM_HOST_TYPES.has((raw as { type?: unknown }).type as string);
}

export type ReviewWebviewMessage =
  | { type: "ready" }
  | { type: "log"; level: "info" | "warn" | "error"; text: string }
  | { type: "navigate"; to: "next" | "prev" | "first" }
  | { type: "setFilter"; filter: ReviewFilter }
  | { type: "selectRound"; runId: string; round: number }
  | { type: "mark"; hash: string; verdict: "correct" | "wrong" }
  | { type: "exclude"; hash: string; excluded: boolean }
  | { type: "forcePair"; chosenHash: string; rejectedHash: string }
  | { type: "swapPair"; chosenHash: string; rejectedHash: string }
  | { type: "excludePair"; chosenHash: string; rejectedHash: string; excluded: boolean }
  | { type: "editRationale"; fromHash: string | null }
  | { type: "confirmRationale"; hash: string }
  | { type: "startRound" }
  | { type: "note"; hash: string }
  | { type: "undo" }
  | { type: "openRecord"; hash: string };

const HASH_MAX = 128;
const hash = (f: Fields, name: string): string => f.str(name, { max: HASH_MAX });
const level = (f: Fields): "info" | "warn" | "error" => f.oneOf("level", ["info", "warn", "error"] as const);

/** The host's check of everything the review webview sends. */
export function checkReviewMessage(raw: unknown): Checked<ReviewWebviewMessage> {
  return checkMessage<ReviewWebviewMessage>(raw, "review", {
    ready: () => ({ type: "ready" }),
    log: (f) => ({ type: "log", level: level(f), text: f.str("text", { empty: true, max: 4000 }) }),
    navigate: (f) => ({ type: "navigate", to: f.oneOf("to", ["next", "prev", "first"] as const) }),
    setFilter: (f) => ({ type: "setFilter", filter: f.oneOf("filter", REVIEW_FILTERS) }),
    selectRound: (f) => ({ type: "selectRound", runId: f.str("runId", { max: 200 }), round: f.int("round", 0, 100_000) }),
    mark: (f) => ({ type: "mark", hash: hash(f, "hash"), verdict: f.oneOf("verdict", ["correct", "wrong"] as const) }),
    exclude: (f) => ({ type: "exclude", hash: hash(f, "hash"), excluded: f.bool("excluded") }),
    forcePair: (f) => {
      const m = { type: "forcePair" as const, chosenHash: hash(f, "chosenHash"), rejectedHash: hash(f, "rejectedHash") };
      if (m.chosenHash === m.rejectedHash) throw new MessageError(`review "forcePair": chosen and rejected must be different rationales`);
      return m;
    },
    swapPair: (f) => ({ type: "swapPair", chosenHash: hash(f, "chosenHash"), rejectedHash: hash(f, "rejectedHash") }),
    excludePair: (f) => ({ type: "excludePair", chosenHash: hash(f, "chosenHash"), rejectedHash: hash(f, "rejectedHash"), excluded: f.bool("excluded") }),
    editRationale: (f) => ({ type: "editRationale", fromHash: f.optStr("fromHash", HASH_MAX) ?? null }),
    confirmRationale: (f) => ({ type: "confirmRationale", hash: hash(f, "hash") }),
    note: (f) => ({ type: "note", hash: hash(f, "hash") }),
    undo: () => ({ type: "undo" }),
    startRound: () => ({ type: "startRound" }),
    openRecord: (f) => ({ type: "openRecord", hash: hash(f, "hash") }),
  });
}

/**
 * How many of a question's samples are right, per sampling step, as both the explorer and the review say it:
 * "3/5 right" for one step, "DPO step 3/5 right · SFT step 1/3 right" for a round with both.
 */
export function sampleTally(samples: ReadonlyArray<{ stage: "dpo" | "sft"; correct: boolean }>): string {
  const steps = (["dpo", "sft"] as const).map((stage) => {
    const of = samples.filter((s) => s.stage === stage);
    return { stage, right: of.filter((s) => s.correct).length, total: of.length };
  }).filter((s) => s.total > 0);
  if (steps.length <= 1) return `${steps[0]?.right ?? 0}/${steps[0]?.total ?? 0} right`;
  return steps.map((s) => `${s.stage === "dpo" ? "DPO" : "SFT"} step ${s.right}/${s.total} right`).join(" · ");
}
