/** How the dashboard writes numbers: the same way in tiles, the table and tooltips. */

const DASH = "—";
const grouped = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** An accuracy held as a fraction, shown in percent with one decimal ("34.8"). */
export function percent(v: number | null): string {
  return v === null ? DASH : (100 * v).toFixed(1);
}

/** A difference of two fractions in percentage points, signed ("+3.6"). */
export function pointsDelta(now: number, before: number): string {
  const d = 100 * (now - before);
  return `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)}`;
}

export function count(v: number | null): string {
  return v === null ? DASH : grouped.format(v);
}

export function countDelta(now: number, before: number): string {
  const d = now - before;
  return `${d >= 0 ? "+" : "−"}${grouped.format(Math.abs(d))}`;
}

export function decimal(v: number | null, digits = 2): string {
  return v === null ? DASH : v.toFixed(digits);
}

/** A step metric in a tooltip: four significant digits, exponent only when it needs one (learning rates). */
export function metric(v: number): string {
  if (v === 0) return "0";
  const rounded = Number(v.toPrecision(4));
  const a = Math.abs(rounded);
  return a >= 1e-3 && a < 1e6 ? rounded.toString() : rounded.toExponential();
}

export function duration(ms: number | null): string {
  if (ms === null) return DASH;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const STAGE_LABEL: Record<string, string> = {
  warmup: "Warm-up SFT", "sample-dpo": "Sampling for DPO", pairs: "Building pairs", dpo: "DPO", "sample-sft": "Sampling pseudo-labels",
  "pseudo-labels": "Selecting pseudo-labels", sft: "SFT", eval: "Evaluation",
};

export const MODE_LABEL: Record<string, string> = { "dpo-st": "DPO-ST", st: "ST" };
