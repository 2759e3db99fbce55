import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { basename } from "node:path";
import { extractFinalAnswer } from "./answerCheck";
import type { Example } from "./example";

/** A bad line in a data set file, with where it is; the message reads `file:line: reason`. */
export class DatasetLineError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = "DatasetLineError";
  }
}

/** Longer lines are rejected rather than parsed: no GSM8K-style record comes near this. */
export const MAX_LINE_CHARS = 1_000_000;

export interface ReadOptions {
  /** "throw" (default) stops at the first bad line; "collect" reports it through onError and reads on. */
  onBadLine?: "throw" | "collect";
  onError?: (error: DatasetLineError) => void;
  /** Prefix of example ids; defaults to the file's name without extension. */
  idPrefix?: string;
}

/**
 * Parses one JSONL record `{"question": "...", "answer": "... #### 72"}` (or `... A: 72`).
 * Throws DatasetLineError naming the file and line.
 */
export function parseExampleLine(text: string, lineNumber: number, file: string, idPrefix: string): Example {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new DatasetLineError(file, lineNumber, `invalid JSON (${detail})`);
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new DatasetLineError(file, lineNumber, "expected a JSON object with \"question\" and \"answer\"");
  }
  const r = record as Record<string, unknown>;
  for (const field of ["question", "answer"] as const) {
    if (!(field in r)) throw new DatasetLineError(file, lineNumber, `missing field "${field}"`);
    if (typeof r[field] !== "string") {
      throw new DatasetLineError(file, lineNumber, `field "${field}" must be a string, not ${typeName(r[field])}`);
    }
    if ((r[field] as string).trim().length === 0) {
      throw new DatasetLineError(file, lineNumber, `field "${field}" is empty`);
    }
  }
  const question = (r["question"] as string).trim();
  const rationale = (r["answer"] as string).trim();
  const final = extractFinalAnswer(rationale);
  if (final === null) {
    const why = rationale.includes("####") ? "no number after ####" : "no final answer after #### (or A:)";
    throw new DatasetLineError(file, lineNumber, why);
  }
  const id = typeof r["id"] === "string" || typeof r["id"] === "number" ? String(r["id"]) : `${idPrefix}:${lineNumber}`;
  return { id, question, rationale, answer: final.value };
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/**
 * Streams the examples of a GSM8K-style JSONL file, line by line; the file is never held in memory whole.
 * Blank lines are skipped; a byte-order mark is ignored.
 */
export async function* readExamples(file: string, options: ReadOptions = {}): AsyncGenerator<Example> {
  const idPrefix = options.idPrefix ?? basename(file).replace(/\.[^.]*$/, "");
  // A folder opens without error on Linux and fails only on the first read: tell it apart up front.
  if ((await stat(file).catch(() => null))?.isDirectory()) throw new Error(`${file}: is a folder, not a file`);
  const stream = createReadStream(file, { encoding: "utf8" });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", reject);
  });
  try {
    await opened;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a file" : String(e);
    throw new Error(`${file}: ${reason}`);
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (let text of lines) {
      lineNumber++;
      if (lineNumber === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.trim().length === 0) continue;
      try {
        if (text.length > MAX_LINE_CHARS) {
          throw new DatasetLineError(file, lineNumber, `line longer than ${MAX_LINE_CHARS} characters`);
        }
        yield parseExampleLine(text, lineNumber, file, idPrefix);
      } catch (e) {
        if (!(e instanceof DatasetLineError) || options.onBadLine !== "collect") throw e;
        options.onError?.(e);
      }
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

export interface DatasetReadResult {
  examples: Example[];
  errors: DatasetLineError[];
}

/** Reads a whole data set into an array, collecting bad lines instead of stopping at the first. */
export async function readDataset(file: string, options: Omit<ReadOptions, "onBadLine" | "onError"> = {}): Promise<DatasetReadResult> {
  const examples: Example[] = [];
  const errors: DatasetLineError[] = [];
  for await (const ex of readExamples(file, { ...options, onBadLine: "collect", onError: (e) => errors.push(e) })) {
    examples.push(ex);
  }
  return { examples, errors };
}
