/** A place in a text: the offset, and its 0-based line and character (UTF-16 units, as editors count them). */
export interface TextPosition {
  offset: number;
  line: number;
  character: number;
}

/** Where a key of a dotted path is written: its name (inside the quotes), and how many of the path's keys were found. */
export interface JsonKeyLocation extends TextPosition {
  /** Length of the key's name as written (without the quotes). */
  length: number;
  /** 1 … path.length: the deepest key of the path the text has, e.g. 1 when only `sampling` of `sampling.topK` is there. */
  depth: number;
}

export function positionAt(text: string, offset: number): TextPosition {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf("\n") + 1;
  return { offset: before.length, line: before.split("\n").length - 1, character: before.length - lineStart };
}

/**
 * Finds the key that a dotted path ("sampling.maxNewTokens") names in a JSON text, so an editor can put the cursor
 * on the setting an error is about. Where the text lacks the whole path, the deepest key it has (`sampling` for a
 * setting left at its default); null when it lacks even the first. Tolerant: a text that stops being JSON part way
 * is read up to there, and a key written twice is found where JSON.parse takes it from (the last time).
 */
export function locateJsonKey(text: string, path: readonly string[]): JsonKeyLocation | null {
  const { best } = scan(text, path);
  return best === null ? null : { ...positionAt(text, best.offset), length: best.length, depth: best.depth };
}

/**
 * Where a text stops being JSON (the offset of the first character that cannot continue it), or null when it is
 * JSON. For errors in JSON.parse's own words, which name no position for some mistakes ("Unexpected token '}'").
 */
export function jsonBreakOffset(text: string): number | null {
  return scan(text, []).brokeAt;
}

/** One pass over a JSON text: the deepest key of `path` found, and where the text stopped being JSON. */
function scan(text: string, path: readonly string[]): { best: { offset: number; length: number; depth: number } | null; brokeAt: number | null } {
  let i = 0;
  // Assigned inside the readers below (a cast, so the compiler does not take it for null ever after).
  let best = null as { offset: number; length: number; depth: number } | null;
  /** Thrown where the text stops being JSON: what was found so far stands. */
  const malformed = new Error("malformed");

  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  /** Reads a string starting at its opening quote; returns its raw content's bounds and its value. */
  const readString = (): { start: number; end: number; value: string } => {
    const start = i + 1;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) throw malformed;
    const end = i;
    i++;
    let value: string;
    try {
      value = JSON.parse(text.slice(start - 1, end + 1)) as string;
    } catch {
      value = text.slice(start, end);
    }
    return { start, end, value };
  };
  /** Reads one value; `depth` keys of the path lead to it when `onPath`. */
  const readValue = (depth: number, onPath: boolean): void => {
    skipSpace();
    const c = text[i];
    if (c === "{") {
      i++;
      for (;;) {
        skipSpace();
        if (text[i] === "}") {
          i++;
          return;
        }
        if (text[i] !== '"') throw malformed;
        const key = readString();
        const here = onPath && depth < path.length && key.value === path[depth];
        // A later key of the path replaces what an earlier one found, deeper or not: JSON.parse keeps the last.
        if (here) best = { offset: key.start, length: key.end - key.start, depth: depth + 1 };
        skipSpace();
        if (text[i] !== ":") throw malformed;
        i++;
        readValue(depth + 1, here);
        skipSpace();
        if (text[i] === ",") i++;
        else if (text[i] !== "}") throw malformed;
      }
    }
    if (c === "[") {
      i++;
      for (;;) {
        skipSpace();
        if (text[i] === "]") {
          i++;
          return;
        }
        readValue(depth, false);
        skipSpace();
        if (text[i] === ",") i++;
        else if (text[i] !== "]") throw malformed;
      }
    }
    if (c === '"') {
      readString();
      return;
    }
    const start = i;
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
    if (!/^(true|false|null|-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)$/.test(text.slice(start, i))) {
      i = start;
      throw malformed;
    }
  };

  try {
    readValue(0, true);
    skipSpace();
    if (i < text.length) throw malformed;
  } catch (e) {
    // Nesting deeper than the stack (JSON.parse reads it; a config never has it) stops the reading there too.
    if (e !== malformed && !(e instanceof RangeError)) throw e;
    return { best, brokeAt: Math.min(i, text.length) };
  }
  return { best, brokeAt: null };
}
