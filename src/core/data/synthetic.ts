import { Rng } from "../util/rng";
import type { Example } from "./example";

/**
 * A seeded generator of GSM8K-format word problems, small enough in vocabulary and length that a model of a
 * few million parameters learns them from scratch on a CPU, and hard enough (1 to 4 chained operations,
 * two- and three-digit numbers) that it gets many wrong: exactly what self-training needs.
 *
 * Every rationale annotates each calculation as `a op b = <<a op b=c>>c` and ends in `#### answer`.
 */

export interface SyntheticOptions {
  seed: number;
  count: number;
  /** Fewest and most chained operations per problem (default 1 and 4). */
  minSteps?: number;
  maxSteps?: number;
  /**
   * "one": every rationale is written as a story, one line per step (the default). "varied": each problem's
   * gold rationale is written in one of three styles (story, bare equations, numbered steps), picked at random,
   * so a problem has several correct rationales that the paper's de-duplication (token-set Jaccard > 0.7) tells
   * apart, as GSM8K's do. The questions and answers are the same either way.
   */
  styles?: RationaleStyles;
}

export type RationaleStyles = "one" | "varied";

const NAMES = ["Mia", "Sam", "Lena", "Omar", "Priya", "Jack", "Ana", "Leo", "Zoe", "Ravi", "Emma", "Noah", "Ivy", "Kai", "Nina", "Theo"];
const PRONOUN: Record<string, "She" | "He"> = {
  Mia: "She", Sam: "He", Lena: "She", Omar: "He", Priya: "She", Jack: "He", Ana: "She", Leo: "He",
  Zoe: "She", Ravi: "He", Emma: "She", Noah: "He", Ivy: "She", Kai: "He", Nina: "She", Theo: "He",
};
const ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cookies", "shells", "cards", "stamps", "eggs", "beads"];
const CONTAINERS = ["boxes", "bags", "packs", "jars", "crates"];
const PEOPLE = ["friends", "cousins", "classmates", "neighbors"];

interface Step {
  /** The sentence added to the question. */
  sentence: string;
  /** The rationale line, with `{calc}` standing for the annotated calculation. */
  explain: string;
  op: "+" | "-" | "*" | "/";
  operand: number;
}

type StepMaker = (rng: Rng, value: number, who: string, pro: string, item: string) => Step | null;

const gain: StepMaker = (rng, _v, _who, pro, item) => {
  const b = rng.int(2, 60);
  const forms = [
    [`${pro} buys ${b} more ${item}.`, `After buying ${b} more, there are {calc} ${item}.`],
    [`A friend gives ${pro === "She" ? "her" : "him"} ${b} ${item}.`, `With the ${b} ${item} from the friend, that is {calc} ${item}.`],
    [`${pro} finds ${b} ${item}.`, `Finding ${b} more makes {calc} ${item}.`],
  ] as const;
  const [sentence, explain] = rng.pick(forms);
  return { sentence, explain, op: "+", operand: b };
};

const loss: StepMaker = (rng, v, _who, pro, item) => {
  if (v < 3) return null;
  const b = rng.int(1, Math.min(v - 1, 60));
  const forms = [
    [`${pro} gives away ${b} ${item}.`, `After giving away ${b}, ${pro.toLowerCase()} has {calc} ${item}.`],
    [`${pro} loses ${b} ${item}.`, `Losing ${b} leaves {calc} ${item}.`],
    [`${pro} sells ${b} of the ${item}.`, `Selling ${b} leaves {calc} ${item}.`],
  ] as const;
  const [sentence, explain] = rng.pick(forms);
  return { sentence, explain, op: "-", operand: b };
};

const times: StepMaker = (rng, v, _who, pro, item) => {
  if (v > 120) return null;
  const b = rng.int(2, v > 40 ? 4 : 9);
  const forms = [
    [`Then the number of ${item} ${pro === "She" ? "she" : "he"} has grows ${b} times.`, `Growing ${b} times gives {calc} ${item}.`],
    [`${pro} fills ${b} ${rng.pick(CONTAINERS)} with that many ${item} each.`, `${b} containers of that many hold {calc} ${item}.`],
  ] as const;
  const [sentence, explain] = rng.pick(forms);
  return { sentence, explain, op: "*", operand: b };
};

const share: StepMaker = (rng, v, _who, pro, item) => {
  const divisors: number[] = [];
  for (let d = 2; d <= 9; d++) if (v % d === 0 && v / d >= 1) divisors.push(d);
  if (divisors.length === 0) return null;
  const b = rng.pick(divisors);
  const group = rng.pick(PEOPLE);
  const forms = [
    [`${pro} shares them equally among ${b} ${group} and keeps one share.`, `One of ${b} equal shares is {calc} ${item}.`],
    [`${pro} keeps only one of every ${b} ${item}.`, `Keeping one of every ${b} leaves {calc} ${item}.`],
  ] as const;
  const [sentence, explain] = rng.pick(forms);
  return { sentence, explain, op: "/", operand: b };
};

const MAKERS: StepMaker[] = [gain, loss, times, share];

function apply(op: Step["op"], a: number, b: number): number {
  switch (op) {
    case "+": return a + b;
    case "-": return a - b;
    case "*": return a * b;
    case "/": return a / b;
  }
}

const VERB: Record<Step["op"], string> = { "+": "add", "-": "take away", "*": "multiply by", "/": "divide by" };

/** One problem from its own seed, so problem n is the same whatever the count. */
export function generateProblem(seed: number, index: number, minSteps = 1, maxSteps = 4, styles: RationaleStyles = "one"): Example {
  const rng = new Rng(seed * 1_000_003 + index);
  const who = rng.pick(NAMES);
  const pro = PRONOUN[who] ?? "They";
  const item = rng.pick(ITEMS);
  const steps = rng.int(minSteps, maxSteps);
  const start = rng.int(2, 90);

  const question: string[] = [`${who} has ${start} ${item}.`];
  const rationale: string[] = [`${who} starts with ${start} ${item}.`];
  const equations: string[] = [];
  const numbered: string[] = [];
  let value = start;
  for (let s = 0; s < steps; s++) {
    let step: Step | null = null;
    for (let tries = 0; step === null && tries < 20; tries++) step = rng.pick(MAKERS)(rng, value, who, pro, item);
    if (step === null) step = gain(rng, value, who, pro, item) as Step;
    const next = apply(step.op, value, step.operand);
    const expr = `${value}${step.op}${step.operand}`;
    const shown = `${value} ${step.op} ${step.operand}`;
    question.push(s === 0 ? step.sentence : `Then ${lowerFirst(step.sentence)}`);
    const calc = `${shown} = <<${expr}=${next}>>${next}`;
    rationale.push(step.explain.replace("{calc}", calc));
    equations.push(calc);
    numbered.push(`Step ${s + 1}: ${VERB[step.op]} ${step.operand}: ${calc}.`);
    value = next;
  }
  question.push(`How many ${item} does ${who} have now?`);
  // Drawn last, so the question and its numbers do not depend on the style setting.
  const style = styles === "varied" ? rng.int(0, 2) : 0;
  const lines = style === 0 ? rationale : style === 1 ? equations : [...numbered, `So ${who} has ${value} ${item}.`];
  lines.push(`#### ${value}`);
  return { id: `syn-${seed}-${index}`, question: question.join(" "), rationale: lines.join("\n"), answer: value };
}

function lowerFirst(s: string): string {
  // Names stay capitalised; pronouns at the start of a sentence do not.
  return /^(She|He|A) /.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

export function generateSyntheticTask(options: SyntheticOptions): Example[] {
  const out: Example[] = [];
  for (let i = 0; i < options.count; i++) {
    out.push(generateProblem(options.seed, i, options.minSteps ?? 1, options.maxSteps ?? 4, options.styles ?? "one"));
  }
  return out;
}

/** The GSM8K JSONL record of an example. */
export function toJsonlRecord(e: Example): string {
  return JSON.stringify({ question: e.question, answer: e.rationale });
}
