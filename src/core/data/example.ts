/** One labelled problem: a question, its gold rationale (ending in `#### N`), and the final answer. */
export interface Example {
  /** Stable id within its data set (`<file stem>:<line>` for files, `syn-<seed>-<n>` for generated ones). */
  id: string;
  question: string;
  /** The gold chain of thought, including the final-answer line. */
  rationale: string;
  answer: number;
}

/** Which part of a data set an example belongs to. */
export type Split = "train" | "dev" | "test";
