/**
 * Token-set Jaccard similarity, the paper's de-duplication measure: two rationales whose sets of tokens
 * overlap by more than 0.7 (|A ∩ B| / |A ∪ B|) count as the same rationale.
 */

/** Lower-cased words, numbers and single symbols: "16-3=13" → {16, -, 3, =, 13}. */
export function tokenSet(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[a-z]+|\d+(?:\.\d+)?|[^\sa-z\d]/g) ?? []);
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const t of small) if (large.has(t)) inter++;
  return inter / (a.size + b.size - inter);
}

export const DUPLICATE_THRESHOLD = 0.7;

/**
 * Keeps items in order, dropping each one too similar (> threshold) to one already kept. `keep` items are
 * always kept (and count as kept for later comparisons), so earlier rounds' and people's rationales win.
 */
export function deduplicate<T>(items: readonly T[], text: (item: T) => string, threshold = DUPLICATE_THRESHOLD, alreadyKept: readonly string[] = []): T[] {
  const kept: Array<Set<string>> = alreadyKept.map(tokenSet);
  const out: T[] = [];
  for (const item of items) {
    const set = tokenSet(text(item));
    if (kept.some((k) => jaccard(k, set) > threshold)) continue;
    kept.push(set);
    out.push(item);
  }
  return out;
}
