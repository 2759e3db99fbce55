/** A finished round's result as the engine reports it (roundFinished) and the CLI and the host say it. */

/** What a finished round gained: its greedy accuracy and the round before's, on test (dev when there is no test set). */
export interface RoundResult {
  split: "test" | "dev";
  accuracy: number | null;
  previous: number | null;
}

/** "test accuracy 6.3% → 3.8% (−2.5 points)", or what is known of it. */
export function formatRoundResult(r: RoundResult): string {
  const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
  if (r.accuracy === null) return "no accuracy (no test or dev questions)";
  if (r.previous === null) return `${r.split} accuracy ${pct(r.accuracy)}`;
  const d = 100 * (r.accuracy - r.previous);
  return `${r.split} accuracy ${pct(r.previous)} → ${pct(r.accuracy)} (${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)} points)`;
}
