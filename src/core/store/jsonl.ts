import { closeSync, createReadStream, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, readdirSync } from "node:fs";
import { openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir, fsyncDirSync, writeFileAtomic } from "./atomic";
import { errorCode, folderInsteadOfFile } from "./fsErrors";
import { BLANK, completeLines, isMissing, parseLine, readTail } from "./jsonlLines";

/*
 * A record counts only when its line is complete, i.e. ends in "\n". Writers here always end a record with
 * "\n" in the same write, so a final line without one is what a crash mid-write leaves behind. Such a line
 * is dropped even when it happens to parse: a cut-off `{"n": 12}` of `{"n": 123}` is valid JSON with the
 * wrong value, so "it parses" cannot tell a whole record from a torn one; only the newline can.
 *
 * A torn line is never destroyed: a repair moves its bytes to `<file>.torn-<time>` beside the file before
 * cutting them off, and readers return its text, so the caller can say what the record was and how to get it
 * back (a metric: rerun the stage; a person's decision: make it again).
 */

export interface ReadJsonlOptions<T> {
  /** Checks and converts one parsed line; throw an Error whose message is the reason. */
  validate?: (value: unknown, line: number) => T;
}

export interface JsonlContents<T> {
  records: T[];
  /** The file ended in an incomplete line (a torn write from a crash), which was left out. */
  tornTail: boolean;
  /** The 1-based line number of that torn line, so that a warning can name it as `file:line`. */
  tornLine?: number;
  /** What the torn line holds, so that a warning can say which record it was (tornFields reads it). */
  tornText?: string;
}

/** A torn tail as the readers report it. */
type TornTail = Pick<JsonlContents<unknown>, "tornTail" | "tornLine" | "tornText">;

/**
 * Streams the complete records of a JSONL file to `each`, one at a time, for files too large to hold (the
 * explorer's index of a 50,000-sample round keeps only summaries). Returns whether a torn tail was left out.
 */
export async function eachJsonl<T>(path: string, each: (record: T, line: number) => void, options: ReadJsonlOptions<T> = {}): Promise<TornTail> {
  const tail = await readTail(path);
  if (tail === null) return { tornTail: false };
  for await (const { text, line } of completeLines(path, tail)) {
    each(parseLine(path, text, line, options.validate), line);
  }
  if (tail.endsWithNewline) return { tornTail: false };
  return { tornTail: true, ...tornTailOf(path, tail.size) };
}

/** The torn line that ends the first `size` bytes: its 1-based line number and its text (read only when torn). */
function tornTailOf(path: string, size: number): { tornLine: number; tornText: string } {
  const fd = openSync(path, "r");
  try {
    const clean = cleanLength(fd, size);
    const bytes = Buffer.alloc(size - clean);
    readSync(fd, bytes, 0, bytes.length, clean);
    return { tornLine: newlinesBefore(fd, clean) + 1, tornText: bytes.toString("utf8") };
  } finally {
    closeSync(fd);
  }
}

/**
 * The fields a torn line still holds whole: `"key": "string"` with its closing quote, `"key": number` followed
 * by "," or "}" (a number cut off mid-way, 12 of 123, is not taken). Keys of nested objects are among them; for
 * naming a lost record ("dpo step 93", "mark wrong of sample 1a2b…"), not for using it.
 */
export function tornFields(text: string): Record<string, string | number> {
  const fields: Record<string, string | number> = {};
  const field = /"([A-Za-z_][\w-]*)"\s*:\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}]))/g;
  for (const m of text.matchAll(field)) {
    const [, key = "", str, num] = m;
    if (Object.hasOwn(fields, key)) continue;
    if (str !== undefined) {
      try {
        fields[key] = JSON.parse(str) as string;
      } catch {
        // an escape cut in two: not readable
      }
    } else if (num !== undefined) fields[key] = Number(num);
  }
  return fields;
}

/** Files that repairs of `path` moved torn lines to (`<file>.torn-<time>`), oldest first. */
export function keptTornFiles(path: string): string[] {
  const prefix = `${basename(path)}.torn-`;
  try {
    return readdirSync(dirname(path)).filter((n) => n.startsWith(prefix)).sort().map((n) => join(dirname(path), n));
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}

/** Reads a whole JSONL file, streaming. A missing file is empty; a bad line throws `path:line: reason`. */
export async function readJsonl<T>(path: string, options: ReadJsonlOptions<T> = {}): Promise<JsonlContents<T>> {
  const records: T[] = [];
  const torn = await eachJsonl<T>(path, (r) => records.push(r), options);
  return { records, ...torn };
}

/**
 * Records [offset, offset + limit) of a JSONL file, for a UI that shows one page of a large file. Lines before
 * the page are skipped unparsed and reading stops once the page is full.
 */
export async function readJsonlPage<T>(
  path: string,
  offset: number,
  limit: number,
  options: ReadJsonlOptions<T> = {},
): Promise<T[]> {
  for (const [name, n] of [["offset", offset], ["limit", limit]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, not ${n}`);
  }
  const records: T[] = [];
  if (limit === 0) return records;
  const tail = await readTail(path);
  if (tail === null) return records;
  let index = 0;
  for await (const { text, line } of completeLines(path, tail)) {
    if (index++ < offset) continue;
    records.push(parseLine(path, text, line, options.validate));
    if (records.length >= limit) break;
  }
  return records;
}

/** Number of complete, non-blank lines, counted on the raw bytes without decoding or parsing. */
export async function countJsonl(path: string): Promise<number> {
  const tail = await readTail(path);
  if (tail === null || tail.size === 0) return 0;
  let count = 0;
  let content = false;
  for await (const chunk of createReadStream(path, { start: 0, end: tail.size - 1 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      // Records start with "{" right away, so this loop is one step per line, not per byte.
      for (let i = start; !content && i < end; i++) {
        const b = chunk[i];
        content = b !== 0x20 && b !== 0x09 && b !== 0x0d;
      }
      if (nl === -1) break;
      if (content) count++;
      content = false;
      start = nl + 1;
    }
  }
  return count;
}

/** Synchronous readJsonl for small files (the review log), whose readers are synchronous. */
export function readJsonlSync<T>(path: string, options: ReadJsonlOptions<T> = {}): JsonlContents<T> {
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch (e) {
    if (isMissing(e)) return { records: [], tornTail: false };
    throw folderInsteadOfFile(e, path);
  }
  const lines = content.split("\n");
  // After the last "\n" comes either "" (a clean end) or a torn line; both are left out.
  const last = lines.pop() ?? "";
  const records: T[] = [];
  lines.forEach((raw, i) => {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (!BLANK.test(text)) records.push(parseLine(path, text, i + 1, options.validate));
  });
  if (last === "") return { records, tornTail: false };
  return { records, tornTail: true, tornLine: lines.length + 1, tornText: last };
}

/** Offset just past the last "\n" before `size`, reading backwards in chunks (0 when there is none). */
function cleanLength(fd: number, size: number): number {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}

/** What a repair cut off: the torn line (1-based, for `file:line` messages) and its length in bytes. */
export interface TornCut {
  line: number;
  bytes: number;
  /** Where its bytes were kept (`<file>.torn-<time>`): a repair moves them aside, it never throws them away. */
  keptAt: string;
  /** Those bytes as text, so that a message can say which record it was (tornFields). */
  text: string;
}

/** Writes a torn line's bytes to a new `<file>.torn-<time>` (never over an earlier one) and makes it durable. */
function keepTornBytes(path: string, bytes: Buffer): string {
  // No ":" in the name: Windows refuses it.
  const stamp = new Date().toISOString().replace(/:/g, "-");
  for (let n = 0; ; n++) {
    const kept = `${path}.torn-${stamp}${n === 0 ? "" : `-${n}`}`;
    let fd: number;
    try {
      fd = openSync(kept, "wx");
    } catch (e) {
      if (errorCode(e) === "EEXIST") continue;
      throw e;
    }
    try {
      writeFileSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDirSync(dirname(path));
    return kept;
  }
}

/** Newlines in the first `end` bytes, read in chunks. */
function newlinesBefore(fd: number, end: number): number {
  const chunk = Buffer.alloc(1 << 20);
  let count = 0;
  for (let pos = 0; pos < end; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
    if (n === 0) break;
    for (let i = chunk.indexOf(0x0a); i !== -1 && i < n; i = chunk.indexOf(0x0a, i + 1)) count++;
    pos += n;
  }
  return count;
}

/**
 * Cuts off a torn last line so the next append starts on a clean line; returns what it cut, or null. The bytes
 * are first kept beside the file (TornCut.keptAt), and the cut happens only once they are on disk.
 */
export function cutTornTailSync(path: string): TornCut | null {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch (e) {
    if (isMissing(e)) return null;
    throw folderInsteadOfFile(e, path);
  }
  try {
    const { size } = fstatSync(fd);
    if (size === 0) return null;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return null;
    const clean = cleanLength(fd, size);
    const line = newlinesBefore(fd, clean) + 1;
    const bytes = Buffer.alloc(size - clean);
    readSync(fd, bytes, 0, bytes.length, clean);
    const keptAt = keepTornBytes(path, bytes);
    ftruncateSync(fd, clean);
    fsyncSync(fd);
    return { line, bytes: bytes.length, keptAt, text: bytes.toString("utf8") };
  } finally {
    closeSync(fd);
  }
}

/** cutTornTailSync, answering only whether it cut anything. */
export function repairJsonlSync(path: string): boolean {
  return cutTornTailSync(path) !== null;
}

/**
 * Async form of repairJsonlSync. It only reads back from the end to the previous newline (one torn record),
 * so doing that work synchronously costs next to nothing.
 */
export async function repairJsonl(path: string): Promise<boolean> {
  return repairJsonlSync(path);
}

/**
 * Replaces a JSONL file's records atomically (a sibling file, fsynced, renamed over it): a crash leaves the old
 * records or the new ones, never an emptied file. For rewrites of files a person keeps, such as metrics.jsonl.
 */
export async function replaceJsonl(path: string, records: readonly unknown[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, records.map((r) => serialise(path, r)).join(""));
}

function serialise(path: string, record: unknown): string {
  const text = JSON.stringify(record);
  if (text === undefined) throw new TypeError(`${path}: record cannot be written as JSON`);
  return text + "\n";
}

/**
 * Appends one record and fsyncs before returning, for human decisions that must survive a crash the moment
 * the click returns. A torn tail is repaired first so the record lands on its own line.
 */
export function appendJsonlSync(path: string, record: unknown): void {
  const line = serialise(path, record);
  mkdirSync(dirname(path), { recursive: true });
  const created = !existsSync(path);
  repairJsonlSync(path);
  let fd: number;
  try {
    fd = openSync(path, "a");
  } catch (e) {
    throw folderInsteadOfFile(e, path);
  }
  try {
    writeFileSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) fsyncDirSync(dirname(path));
}

/** Above this many buffered characters, append starts writing in the background (flush still fsyncs). */
const BACKGROUND_WRITE_CHARS = 1 << 20;

/** Buffered JSONL writer for stage outputs (samples, pairs, metrics): one JSON record per line. */
export class JsonlWriter<T> {
  private buffer: string[] = [];
  private bufferedChars = 0;
  // Writes run one after another so lines keep their order; the first failure is reported by flush/close.
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private closed = false;
  private dirSynced: boolean;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    created: boolean,
    /** The torn last line that opening for append cut off (left by an interrupted write), for the caller to report. */
    readonly repaired: TornCut | null,
  ) {
    this.dirSynced = !created;
  }

  /** Opens for appending (after repairing a torn tail), or empties the file with `truncate`. */
  static async open<T>(path: string, options: { truncate?: boolean } = {}): Promise<JsonlWriter<T>> {
    await mkdir(dirname(path), { recursive: true });
    const created = options.truncate === true || (await readTail(path)) === null;
    const repaired = options.truncate !== true ? cutTornTailSync(path) : null;
    const handle = await open(path, options.truncate === true ? "w" : "a").catch((e: unknown) => Promise.reject(folderInsteadOfFile(e, path)));
    return new JsonlWriter<T>(path, handle, created, repaired);
  }

  /** Buffers one record; it is on disk after the next flush or close. */
  append(record: T): void {
    if (this.closed) throw new Error(`${this.path}: append after close`);
    const line = serialise(this.path, record);
    this.buffer.push(line);
    this.bufferedChars += line.length;
    if (this.bufferedChars >= BACKGROUND_WRITE_CHARS) this.startWrite();
  }

  private startWrite(): void {
    if (this.buffer.length === 0) return;
    const data = this.buffer.join("");
    this.buffer = [];
    this.bufferedChars = 0;
    this.writing = this.writing.then(async () => {
      if (this.failure !== null) return;
      try {
        await this.handle.writeFile(data);
      } catch (e) {
        this.failure = e;
      }
    });
  }

  /** Writes everything appended so far and fsyncs it. */
  async flush(): Promise<void> {
    if (this.closed) throw new Error(`${this.path}: flush after close`);
    this.startWrite();
    await this.writing;
    if (this.failure !== null) throw this.failure;
    await this.handle.sync();
    if (!this.dirSynced) {
      await fsyncDir(dirname(this.path));
      this.dirSynced = true;
    }
  }

  /** Flushes and closes; the file handle is released even when the flush fails. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.handle.close();
    }
  }
}
