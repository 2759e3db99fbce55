import { existsSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import { countJsonl } from "../store/jsonl";
import { roundStages } from "../selftrain/stages";
import { nextRound } from "../selftrain/workspace";
import { disagrees } from "./roundIndex";
import type { SelfTrainConfig } from "../selftrain/configTypes";
import type { RoundIndex } from "./roundIndex";
import { stageLabel, type RunManifest, type StageName, type StageRecord } from "../../shared/runTypes";

/**
 * The words of the Dataset Explorer's Data, Run and Next rows, from the files: short descriptions that fit the
 * default sidebar width, the details in tooltips. The tree (host/datasetTree.ts) only puts them on rows.
 */
export interface RowText {
  description: string;
  tooltip: string;
}

const n = (x: number): string => x.toLocaleString("en-US");
const plural = (x: number, word: string): string => `${n(x)} ${word}${x === 1 ? "" : "s"}`;

/** The data as the next round uses it: the splits as runData.ts makes them, and the caps of the settings. */
export interface DataUse {
  file: string;
  /** Questions in the train file; null when it is missing. */
  lines: number | null;
  /** Train questions after the dev (and test) split, and those a round uses (data.maxTrainQuestions). */
  train: number;
  used: number;
  dev: number;
  test: number;
  testFile: string | null;
  /** Questions evaluated per split (eval.maxQuestions). */
  devEval: number;
  testEval: number;
}

export async function dataUse(config: SelfTrainConfig, workspace: string): Promise<DataUse> {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(workspace, p));
  const file = at(config.data.train);
  const testFile = config.data.test ? at(config.data.test) : null;
  const lines = existsSync(file) ? await countJsonl(file) : null;
  const all = lines ?? 0;
  const dev = Math.min(config.data.devSize, Math.floor(all / 4));
  const test = testFile !== null ? (existsSync(testFile) ? await countJsonl(testFile) : 0) : Math.min(config.data.testSize, Math.max(0, all - dev));
  const train = Math.max(0, all - dev - (testFile === null ? test : 0));
  const used = config.data.maxTrainQuestions > 0 ? Math.min(train, config.data.maxTrainQuestions) : train;
  const cap = (x: number): number => (config.eval.maxQuestions > 0 ? Math.min(x, config.eval.maxQuestions) : x);
  return { file, lines, train, used, dev, test, testFile, devEval: cap(dev), testEval: cap(test) };
}

/** "40 train · 6 dev · 6 test": what the round uses; the file and the totals in the tooltip. */
export function describeData(d: DataUse): RowText {
  if (d.lines === null) return { description: `${basename(d.file)} missing`, tooltip: `${d.file} does not exist: set data.train in config.json.` };
  const tip = [
    `${d.file}: ${plural(d.lines, "question")}.`,
    d.used < d.train ? `Train: a round uses ${n(d.used)} of the ${n(d.train)} train questions (data.maxTrainQuestions).` : `Train: ${plural(d.train, "question")}.`,
    `Dev: ${n(d.dev)}, taken from the train file${d.devEval < d.dev ? `; evaluation uses ${n(d.devEval)} (eval.maxQuestions)` : ""}.`,
    `Test: ${n(d.test)}, ${d.testFile ? `from ${d.testFile}` : "taken from the train file"}${d.testEval < d.test ? `; evaluation uses ${n(d.testEval)} (eval.maxQuestions)` : ""}.`,
  ];
  return { description: `${n(d.used)} train · ${n(d.devEval)} dev · ${n(d.testEval)} test`, tooltip: tip.join("\n") };
}

/** Where a run is, as its manifest says: the finished rounds, and the one in progress with its stages. */
export interface RunProgress {
  /** Rounds 1… with every stage done (the warm-up is round 0 and is not counted). */
  finished: number;
  warmupDone: boolean;
  current: null | {
    round: number;
    done: number;
    total: number;
    /** The first stage not done, and its state: `interrupted` is a running stage whose process is gone. */
    stage: StageName;
    state: "running" | "interrupted" | "failed" | "stopped" | "not started";
    error?: string;
  };
}

export function runProgress(m: RunManifest, live: (s: StageRecord) => boolean): RunProgress {
  const allDone = (r: number): boolean => {
    const rec = m.rounds.find((x) => x.round === r);
    return rec !== undefined && roundStages(r, m.mode).every((s) => rec.stages[s]?.state === "done");
  };
  const finished = m.rounds.filter((r) => r.round > 0 && allDone(r.round)).length;
  const at = nextRound(m);
  const rec = m.rounds.find((r) => r.round === at);
  // A round with no record has not begun: the run is between rounds (after the warm-up there is always round 1).
  if (!rec && at > 0) return { finished, warmupDone: allDone(0), current: null };
  const stages = roundStages(at, m.mode);
  const done = stages.filter((s) => rec?.stages[s]?.state === "done").length;
  const stage = stages.find((s) => rec?.stages[s]?.state !== "done")!;
  const s = rec?.stages[stage];
  const state = s?.state === "running" ? (live(s) ? "running" : "interrupted") : s?.state === "failed" ? "failed" : s?.state === "cancelled" ? "stopped" : "not started";
  return { finished, warmupDone: allDone(0), current: { round: at, done, total: stages.length, stage, state, ...(s?.error ? { error: s.error } : {}) } };
}

/** "2 rounds done · round 3: 4/7": never the manifest's record count, which includes the warm-up and a round just begun. */
export function describeRun(m: RunManifest, p: RunProgress): RowText {
  const c = p.current;
  const where = c === null ? null : c.round === 0 ? `warm-up ${c.done}/${c.total}` : `round ${c.round}: ${c.done}/${c.total}`;
  const description = p.finished === 0 ? where ?? (p.warmupDone ? "warm-up done" : "not started") : where ? `${n(p.finished)} done · ${where}` : `${plural(p.finished, "round")} done`;
  const tip = [`${m.mode === "st" ? "Self-training (ST)" : "DPO-augmented self-training (DPO-ST)"} run ${m.runId}.`];
  tip.push(`Warm-up ${p.warmupDone ? "done" : "not finished"}; ${plural(p.finished, "round")} finished after it.`);
  if (c) {
    const what = c.round === 0 ? "The warm-up" : `Round ${c.round}`;
    tip.push(`${what}: ${c.done} of ${c.total} stages done; ${stageLabel(c.stage, true)} ${c.state === "interrupted" ? "was interrupted (▶ Start round resumes it)" : c.state === "failed" ? `failed: ${c.error ?? "see the log"}` : c.state}.`);
  }
  return { description, tooltip: tip.join("\n") };
}

/** The host command a Next row runs (package.json's command ids). */
export type NextCommand = { command: "selfTraining.startRound" } | { command: "selfTraining.openDashboard" } | { command: "selfTraining.reviewRationales"; target: { runId: string; round: number; questionId: string } };

export interface NextStep extends RowText {
  label: string;
  icon: "play" | "loading~spin" | "eye" | "debug-restart";
  action: NextCommand;
}

/** Samples a person should look at before the next round: a right final answer reached with wrong arithmetic, undecided. */
export function samplesToReview(index: RoundIndex): { samples: number; first: string | null } {
  let samples = 0;
  let first: string | null = null;
  for (const q of index.questions) {
    if (!disagrees(q.samples)) continue;
    const open = q.samples.filter((s) => s.autoCorrect && s.arithmeticErrors > 0 && s.decided === null).length;
    if (open > 0 && first === null) first = q.questionId;
    samples += open;
  }
  return { samples, first };
}

/**
 * What to do next, for the newest run (null: none yet): watch a running stage, resume or retry an unfinished
 * round, review the samples whose checks disagree in the round just finished, or start the next round.
 * `estimate` is the next round's ("about 6 minutes", and what it was estimated from) when known; `review` is samplesToReview of the newest finished round.
 */
export function nextStep(m: RunManifest | null, p: RunProgress | null, estimate: { text: string; basis: string } | null, review: { round: number; samples: number; first: string | null } | null): NextStep {
  const start = "▶ Start round";
  const basis = estimate ? ` Estimated ${estimate.text}, from ${estimate.basis}.` : "";
  if (m === null || p === null) {
    return { label: `Next: ${start}`, description: estimate?.text ?? "warm-up and round 1", tooltip: `Runs the warm-up SFT, then round 1: sampling, pairs, DPO, pseudo-labels, SFT and evaluation.${basis}`, icon: "play", action: { command: "selfTraining.startRound" } };
  }
  const c = p.current;
  if (c) {
    const what = c.round === 0 ? "warm-up" : `round ${c.round}`;
    const stage = stageLabel(c.stage);
    if (c.state === "running") return { label: `Now: ${what} (${stage})`, description: "dashboard", tooltip: `${stageLabel(c.stage)} of ${what} is running (${c.done} of ${c.total} stages done). Click to open the dashboard.`, icon: "loading~spin", action: { command: "selfTraining.openDashboard" } };
    if (c.state === "not started" && c.done === 0) return { label: `Next: ${start} ${c.round === 0 ? "" : c.round}`.trimEnd(), description: estimate?.text ?? "", tooltip: `Runs ${c.round <= 1 ? "the warm-up (if it has not run) and round 1" : `round ${c.round}`}.${basis}`, icon: "play", action: { command: "selfTraining.startRound" } };
    const verb = c.state === "failed" ? "Retry" : "Resume";
    const why = c.state === "failed" ? `${stage} failed: ${c.error ?? "see the log"}.` : c.state === "interrupted" ? `${stage} was interrupted.` : c.state === "stopped" ? `${stage} was stopped.` : `${c.done} of ${c.total} stages are done.`;
    return { label: `Next: ${verb} ${what} (${stage})`, description: `${c.done}/${c.total}`, tooltip: `${why} ▶ Start round goes on from ${stageLabel(c.stage, true)}; finished stages are kept.`, icon: c.state === "failed" ? "debug-restart" : "play", action: { command: "selfTraining.startRound" } };
  }
  const following = Math.max(1, p.finished + 1);
  if (review && review.samples > 0 && review.first !== null) {
    return {
      label: `Next: review ${plural(review.samples, "sample")}`,
      description: `round ${review.round}`,
      tooltip: `In round ${review.round}, ${plural(review.samples, "sample")} reached the right final answer with wrong arithmetic and nobody has decided about them: mark them right or wrong, and round ${following} builds its pairs and pseudo-labels with your verdicts. Or ▶ Start round ${following} now.`,
      icon: "eye",
      action: { command: "selfTraining.reviewRationales", target: { runId: m.runId, round: review.round, questionId: review.first } },
    };
  }
  return { label: `Next: ${start} ${following}`, description: estimate?.text ?? "", tooltip: `Runs round ${following}: ${roundStages(following, m.mode).map((s) => stageLabel(s, true)).join(", ")}.${basis}`, icon: "play", action: { command: "selfTraining.startRound" } };
}
