import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import { parseExampleLine } from "../data/jsonlReader";
import type { Example } from "../data/example";

/** The byte ranges of the lines (without their newline) in which `text` occurs, each line once. */
function* linesContaining(buf: Buffer, text: string): Generator<{ start: number; end: number }> {
  const needle = Buffer.from(text);
  for (let from = 0; ; ) {
    const hit = buf.indexOf(needle, from);
    if (hit < 0) return;
    const start = buf.lastIndexOf(10, hit) + 1;
    let end = buf.indexOf(10, hit);
    if (end < 0) end = buf.length;
    from = end;
    yield { start, end };
  }
}

/**
 * The records of one question in a round's JSONL file, without parsing the others: the file is searched as
 * bytes for the question's `"questionId":…` field (the run store writes records compactly, one per line) and
 * only matching lines are parsed. A 50,000-sample file (~30 MB) is searched in tens of milliseconds.
 */
export async function recordsOfQuestion<T extends { questionId: string }>(file: string, questionId: string): Promise<T[]> {
  if (!existsSync(file)) return [];
  const buf = await readFile(file);
  const out: T[] = [];
  for (const { start, end } of linesContaining(buf, `"questionId":${JSON.stringify(questionId)}`)) {
    try {
      const record = JSON.parse(buf.subarray(start, end).toString("utf8")) as T;
      // The bytes matched; the parsed field must too (the text could sit inside a rationale).
      if (record.questionId === questionId) out.push(record);
    } catch {
      // A torn last line (a crash mid-append) is not a record.
    }
  }
  return out;
}

/**
 * Streams a JSONL file's records grouped by question (consecutive lines with the same questionId, as the
 * sampler writes them) and stops at the first group `accept` takes: opening the review on the first question
 * of a filter costs a few lines of a large file, not all of it.
 */
export async function firstQuestionGroup<T extends { questionId: string }>(file: string, accept: (records: readonly T[]) => boolean): Promise<T[] | null> {
  if (!existsSync(file)) return null;
  const stream = createReadStream(file, { encoding: "utf8" });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let group: T[] = [];
  try {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      let record: T;
      try {
        record = JSON.parse(line) as T;
      } catch {
        continue;
      }
      if (group.length > 0 && group[0]!.questionId !== record.questionId) {
        if (accept(group)) return group;
        group = [];
      }
      group.push(record);
    }
    return group.length > 0 && accept(group) ? group : null;
  } finally {
    lines.close();
    stream.destroy();
  }
}

/**
 * The gold example of a question from the run's data files. Ids are `<file stem>:<line>` unless the file gives
 * its own; the first form jumps to the line, the second searches the bytes for the id before parsing.
 */
export async function findGoldExample(files: readonly string[], questionId: string): Promise<Example | null> {
  for (const file of files) {
    if (!file || !existsSync(file)) continue;
    const stem = basename(file).replace(/\.[^.]*$/, "");
    const buf = await readFile(file);
    const byLine = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+)$`).exec(questionId);
    if (byLine) {
      const want = Number(byLine[1]);
      let start = 0;
      for (let line = 1; line < want; line++) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) {
          start = -1;
          break;
        }
        start = nl + 1;
      }
      if (start >= 0) {
        let end = buf.indexOf(10, start);
        if (end < 0) end = buf.length;
        try {
          const e = parseExampleLine(buf.subarray(start, end).toString("utf8"), want, file, stem);
          if (e.id === questionId) return e;
        } catch {
          // Not this file's line after all; fall through to the search.
        }
      }
    }
    for (const { start, end } of linesContaining(buf, JSON.stringify(questionId))) {
      let lineNumber = 1;
      for (let i = buf.indexOf(10); i >= 0 && i < start; i = buf.indexOf(10, i + 1)) lineNumber++;
      try {
        const e = parseExampleLine(buf.subarray(start, end).toString("utf8"), lineNumber, file, stem);
        if (e.id === questionId) return e;
      } catch {
        // Keep searching.
      }
    }
  }
  return null;
}
