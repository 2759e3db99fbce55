/**
 * Largest-Triangle-Three-Buckets (Steinarsson, 2013): picks `threshold` of the points so that a line through
 * them looks like the line through all of them. Unlike every-nth thinning it keeps spikes and the first and
 * last point, which is what a reader of a loss curve looks for.
 */
export function lttbIndices(x: readonly number[], y: readonly number[], threshold: number): number[] {
  const n = Math.min(x.length, y.length);
  if (threshold >= n) return Array.from({ length: n }, (_, i) => i);
  if (threshold <= 2) return n === 0 ? [] : n === 1 || threshold <= 1 ? [0] : [0, n - 1];
  const out: number[] = [0];
  // The first and last points are kept, so the other n - 2 fall into threshold - 2 buckets.
  const every = (n - 2) / (threshold - 2);
  let a = 0;
  for (let i = 0; i < threshold - 2; i++) {
    const nextStart = Math.floor((i + 1) * every) + 1;
    const nextEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let avgX = 0;
    let avgY = 0;
    for (let j = nextStart; j < nextEnd; j++) {
      avgX += x[j]!;
      avgY += y[j]!;
    }
    const len = Math.max(1, nextEnd - nextStart);
    avgX /= len;
    avgY /= len;
    const start = Math.floor(i * every) + 1;
    const end = Math.floor((i + 1) * every) + 1;
    const ax = x[a]!;
    const ay = y[a]!;
    let best = start;
    let bestArea = -1;
    for (let j = start; j < end; j++) {
      const area = Math.abs((ax - avgX) * (y[j]! - ay) - (ax - x[j]!) * (avgY - ay));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    out.push(best);
    a = best;
  }
  out.push(n - 1);
  return out;
}

/** The series itself when short enough, else its LTTB selection. */
export function downsample(s: { x: number[]; y: number[] }, maxPoints: number): { x: number[]; y: number[] } {
  if (s.x.length <= maxPoints) return s;
  const keep = lttbIndices(s.x, s.y, maxPoints);
  return { x: keep.map((i) => s.x[i]!), y: keep.map((i) => s.y[i]!) };
}
