/**
 * Symbolic dimensions: a dimension is a number or a name bound at run time ("B", "T"), or a sum or product of
 * those ("P+T", "B*T"), so that one graph serves every batch size and length. Sums and products are kept in a
 * canonical form so that the same dimension reached two ways compares equal as a string; broadcasting is
 * resolved when a graph is built, not with shape arithmetic in the graph.
 */
export type Dim = number | string;

/** NumPy broadcasting of two symbolic shapes; unequal symbols cannot be proven compatible and are refused. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new Error(`cannot broadcast [${a.join(",")}] with [${b.join(",")}]`);
  }
  return out;
}

/** The product of dimensions: numbers folded into one factor, sums parenthesised ("2*B*(P+T)"). */
export function dimProduct(dims: readonly Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === "number") n *= d;
    else syms.push(d.includes("+") ? `(${d})` : d);
  }
  if (syms.length === 0) return n;
  return n === 1 ? syms.join("*") : [String(n), ...syms].join("*");
}

/** a + b in a canonical form (terms sorted, numbers folded), so P+T and T+P are the same dimension. */
export function dimSum(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  const terms = [a, b].flatMap((d) => (typeof d === "number" ? [String(d)] : topLevelSplit(d, "+")));
  const n = terms.filter((t) => /^\d+$/.test(t)).reduce((acc, t) => acc + Number(t), 0);
  const syms = terms.filter((t) => !/^\d+$/.test(t)).sort();
  return [...syms, ...(n ? [String(n)] : [])].join("+");
}

/** n · sym as a dimension name ("T" when n is 1), consistent wherever the same product is formed. */
export function times(n: number, sym: Dim): Dim {
  if (n === 1) return sym;
  return typeof sym === "number" ? n * sym : `${n}*${sym}`;
}

/** A symbolic dimension as an ONNX dim_param: "B*T" → "BxT", "P+T" → "P_plus_T" (distinct names stay distinct). */
export function dimParam(d: string): string {
  return d.replace(/\*/g, "x").replace(/\+/g, "_plus_").replace(/[()]/g, "");
}

/** Splits a dimension expression at `op` outside parentheses: "(P+T)*B" at "*" → ["(P+T)", "B"]. */
export function topLevelSplit(s: string, op: "+" | "*"): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === op && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}
