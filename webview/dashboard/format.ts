/** How the dashboard writes numbers: the same way in tiles, the table and tooltips. */
import { formatDuration } from "../../src/shared/format";

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
  return ms === null ? DASH : formatDuration(ms);
}

export const MODE_LABEL: Record<string, string> = { "dpo-st": "DPO-ST", st: "ST" };
