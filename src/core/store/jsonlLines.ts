/** Line-level reading shared by the JSONL functions in jsonl.ts; see there for what counts as a record. */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { createInterface } from "node:readline";
import { FolderInsteadOfFileError } from "./fsErrors";

/** Only JSON's own whitespace, so a line that is blank here is blank for countJsonl too. */
export const BLANK = /^[ \t\r]*$/;

export function isMissing(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT";
}

export function parseLine<T>(path: string, text: string, line: number, validate?: (v: unknown, line: number) => T): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}:${line}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (validate === undefined) return value as T;
  try {
    return validate(value, line);
  } catch (e) {
    throw new Error(`${path}:${line}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export interface Tail {
  size: number;
  endsWithNewline: boolean;
}

/** Size and last byte, taken together so that a concurrent appender cannot make them disagree. */
export async function readTail(path: string): Promise<Tail | null> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
  try {
    const info = await handle.stat();
    // Opening a folder for reading succeeds; reading it fails with a bare EISDIR that names nothing.
    if (info.isDirectory()) throw new FolderInsteadOfFileError(path);
    const { size } = info;
    if (size === 0) return { size, endsWithNewline: true };
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return { size, endsWithNewline: last[0] === 0x0a };
  } finally {
    await handle.close();
  }
}

/**
 * The complete, non-blank lines of the first `tail.size` bytes, with 1-based line numbers. Reading stops at
 * that size so that lines appended meanwhile are not mistaken for (or cut into) a torn tail.
 */
export async function* completeLines(path: string, tail: Tail): AsyncGenerator<{ text: string; line: number }> {
  if (tail.size === 0) return;
  const stream = createReadStream(path, { encoding: "utf8", start: 0, end: tail.size - 1 });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    // readline yields a final line without "\n" like any other; holding one line back lets us drop it.
    let held: { text: string; line: number } | null = null;
    let line = 0;
    for await (const text of lines) {
      line++;
      if (held !== null && !BLANK.test(held.text)) yield held;
      held = { text, line };
    }
    if (held !== null && tail.endsWithNewline && !BLANK.test(held.text)) yield held;
  } finally {
    lines.close();
    stream.destroy();
  }
}
