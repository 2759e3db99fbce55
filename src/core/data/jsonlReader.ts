import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
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

/** The raw lines of a file as bytes (without "\n"), with 1-based numbers; a final line without "\n" counts too. */
async function* byteLines(stream: AsyncIterable<Buffer>): AsyncGenerator<{ bytes: Buffer; line: number }> {
  let carry: Buffer = Buffer.alloc(0);
  let line = 0;
  for await (const chunk of stream) {
    let buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      yield { bytes: buf.subarray(start, nl), line: ++line };
      start = nl + 1;
    }
    buf = buf.subarray(start);
    // A line that will be refused as too long is not held whole: its start is enough to say so.
    carry = buf.length > 4 * MAX_LINE_CHARS + 4 ? buf.subarray(0, 4 * MAX_LINE_CHARS + 4) : Buffer.from(buf);
  }
  if (carry.length > 0) yield { bytes: carry, line: ++line };
}

/** An example with the line it was read from, for reports that point into the file. */
export interface ExampleAt {
  example: Example;
  line: number;
}

/**
 * Streams the examples of a GSM8K-style JSONL file with their line numbers; the file is never held in memory
 * whole. Blank lines are skipped; a byte-order mark is ignored. Text must be valid UTF-8: a line that is not is a
 * bad line, never silently re-decoded with replacement characters.
 */
export async function* readExampleLines(file: string, options: ReadOptions = {}): AsyncGenerator<ExampleAt> {
  const idPrefix = options.idPrefix ?? basename(file).replace(/\.[^.]*$/, "");
  // A folder opens without error on Linux and fails only on the first read: tell it apart up front.
  if ((await stat(file).catch(() => null))?.isDirectory()) throw new Error(`${file}: is a folder, not a file`);
  const stream = createReadStream(file);
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
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  try {
    for await (const { bytes, line: lineNumber } of byteLines(stream as AsyncIterable<Buffer>)) {
      try {
        if (bytes.length > 4 * MAX_LINE_CHARS) throw new DatasetLineError(file, lineNumber, `line longer than ${MAX_LINE_CHARS} characters`);
        let text: string;
        try {
          text = utf8.decode(bytes);
        } catch {
          throw new DatasetLineError(file, lineNumber, `not valid UTF-8 text (at byte ${firstInvalidUtf8(bytes) + 1} of the line); save the file as UTF-8`);
        }
        if (text.endsWith("\r")) text = text.slice(0, -1);
        if (lineNumber === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        if (text.trim().length === 0) continue;
        if (text.length > MAX_LINE_CHARS) throw new DatasetLineError(file, lineNumber, `line longer than ${MAX_LINE_CHARS} characters`);
        yield { example: parseExampleLine(text, lineNumber, file, idPrefix), line: lineNumber };
      } catch (e) {
        if (!(e instanceof DatasetLineError) || options.onBadLine !== "collect") throw e;
        options.onError?.(e);
      }
    }
  } finally {
    stream.destroy();
  }
}

/** Offset of the first byte that does not start or continue a UTF-8 character, for the message. */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const more = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (more < 0) return i;
    for (let k = 1; k <= more; k++) if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    i += more + 1;
  }
  return b.length;
}

/** The examples of a data set file, in order (readExampleLines without the line numbers). */
export async function* readExamples(file: string, options: ReadOptions = {}): AsyncGenerator<Example> {
  for await (const { example } of readExampleLines(file, options)) yield example;
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
