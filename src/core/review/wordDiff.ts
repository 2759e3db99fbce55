import type { DiffPart } from "../../shared/reviewProtocol";

/** Words and the whitespace after them, so joining the parts gives back the text exactly. */
function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** Above this many words per side the quadratic table is not worth it; the diff shows remove-all/add-all. */
const MAX_WORDS = 2000;

/**
 * A word-level diff from `from` to `to` (longest common subsequence): the parts, in order, of what both share,
 * what only `to` has (added) and what only `from` has (removed). Adjacent parts of the same kind are merged.
 */
export function wordDiff(from: string, to: string): DiffPart[] {
  const a = words(from);
  const b = words(to);
  const out: DiffPart[] = [];
  const push = (op: DiffPart["op"], text: string): void => {
    const last = out[out.length - 1];
    if (last && last.op === op) last.text += text;
    else if (text.length > 0) out.push({ op, text });
  };
  if (a.length > MAX_WORDS || b.length > MAX_WORDS) {
    push("removed", from);
    push("added", to);
    return spaced(out);
  }
  // Compare words without their trailing whitespace: a line break where there was a space is no change.
  const ka = a.map((w) => w.trimEnd());
  const kb = b.map((w) => w.trimEnd());
  const n = a.length, m = b.length;
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], in one flat array.
  const lcs = new Uint16Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = ka[i] === kb[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
    }
  }
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (ka[i] === kb[j]) {
      push("same", b[j]!);
      i++;
      j++;
    } else if (lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!) {
      push("removed", a[i++]!);
    } else {
      push("added", b[j++]!);
    }
  }
  while (i < n) push("removed", a[i++]!);
  while (j < m) push("added", b[j++]!);
  return spaced(out);
}

/**
 * Marks where two parts would touch without a space: a text's last word has none after it, so "#### 24" against
 * "#### 26" would show "2426", and a cut-off sample's last word runs into the chosen side's next one. The space is
 * for the display only (DiffPart.spaceAfter): the parts' texts still rebuild both sides.
 */
function spaced(parts: DiffPart[]): DiffPart[] {
  for (let i = 0; i + 1 < parts.length; i++) {
    if (!/\s$/.test(parts[i]!.text) && !/^\s/.test(parts[i + 1]!.text)) parts[i]!.spaceAfter = true;
  }
  return parts;
}
