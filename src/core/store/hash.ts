import { createHash } from "node:crypto";

/**
 * Trims and collapses every run of whitespace to one space, so a re-sampled rationale that differs only in
 * spacing or line breaks is recognised as the same one and keeps the human decisions attached to it.
 */
export function normaliseRationale(rationale: string): string {
  return rationale.trim().replace(/\s+/g, " ");
}

/**
 * The key human decisions attach to: 16 hex digits (64 bits) of sha256, short enough to read in a diff of
 * reviews.jsonl and, at tens of thousands of samples per run, far from any likely collision. The NUL separator
 * keeps ("ab", "c") and ("a", "bc") apart.
 */
export function contentHash(question: string, rationale: string): string {
  return createHash("sha256")
    .update(question + "\u0000" + normaliseRationale(rationale), "utf8")
    .digest("hex")
    .slice(0, 16);
}
