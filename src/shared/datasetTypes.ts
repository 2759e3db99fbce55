/** What a user wants to know of a data set file before training on it. */
export interface DatasetReport {
  file: string;
  examples: number;
  /** Bad lines, in file order; at most `maxErrors` are kept, `errorCount` counts them all. */
  errors: Array<{ line: number; message: string }>;
  errorCount: number;
  annotations: number;
  /** Annotations whose expression evaluates to the result written after `=`. */
  annotationsCorrect: number;
  /** Annotations outside the calculator's grammar. */
  annotationsUnparseable: number;
  /** Annotations whose written result is not a number (`<<3/4=3/4>>`). */
  annotationsBadResult: number;
  /** Examples with at least one wrong calculation, first few ids. */
  wrongArithmetic: Array<{ id: string; annotation: string; expected: string }>;
  /** The first annotations the check cannot judge (outside the grammar, or a result that is not a number), with their line. */
  unjudged: Array<{ line: number; id: string; annotation: string; reason: string }>;
}
