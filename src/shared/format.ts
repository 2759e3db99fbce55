/** Plain-text formats shared by the CLI, the extension host and the webviews, so each number reads the same everywhere. */

/** A duration or ETA: "42 s", "3 min 20 s", "2 h 5 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
