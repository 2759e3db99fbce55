import { GraphBuilder } from "../../../../src/core/engine/ort/onnx/graphBuilder";
import type { Value } from "../../../../src/core/engine/ort/onnx/graphRecorder";
import type { Dim } from "../../../../src/core/engine/ort/onnx/symbolicShape";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { Rng } from "../../../../src/core/util/rng";

export interface CheckInput {
  shape: number[];
  /** Shape as declared in the graph (symbols exercise the run-time shape machinery); default `shape`. */
  declared?: Dim[];
  /** Values in [0.5, 1.5] (for log, sqrt, division). */
  positive?: boolean;
  /** An integer input (indices): not differentiated. */
  ints?: { values: number[]; dtype: "int32" | "int64" };
}

export interface CheckResult {
  /** Largest |autodiff − finite difference| over all elements, divided by the largest |finite difference|. */
  maxRelError: number;
  /** Elements compared. */
  count: number;
}

/**
 * Checks the builder's VJPs of `f` in float64: the gradient of Σ f(x) ⊙ r (r fixed, random) against central
 * finite differences of the same graph's forward value, element by element.
 */
export async function gradCheck(inputs: CheckInput[], f: (b: GraphBuilder, xs: Value[]) => Value, options: { dtype?: "float32" | "float64"; h?: number; seed?: number } = {}): Promise<CheckResult> {
  const ort = loadOrt();
  const dtype = options.dtype ?? "float64";
  const rng = new Rng(options.seed ?? 7);
  const b = new GraphBuilder("gradcheck", dtype);
  const xs = inputs.map((inp, i) => b.input(`x${i}`, inp.ints ? inp.ints.dtype : dtype, inp.declared ?? inp.shape));
  const y = f(b, xs);
  // The cotangent r is a graph input, so its shape can follow y's symbolic shape.
  const r = b.input("r", dtype, y.shape);
  const loss = b.reduceSum(b.reshape(b.mul(y, r), [dimCount(y.shape)]), [0], false);
  const diff = xs.filter((_, i) => !inputs[i]!.ints);
  const grads = b.gradients(loss, diff);
  b.output(loss, "loss");
  grads.forEach((g, i) => b.output(g, `g${i}`));
  const session = await createSession(b.toBytes(), { threads: 1 });

  const floats = (n: number, f: () => number): Float32Array | Float64Array => (dtype === "float64" ? Float64Array.from({ length: n }, f) : Float32Array.from({ length: n }, f));
  const values = inputs.map((inp) => {
    if (inp.ints) return inp.ints.dtype === "int32" ? Int32Array.from(inp.ints.values) : BigInt64Array.from(inp.ints.values.map(BigInt));
    const n = inp.shape.reduce((a, c) => a * c, 1);
    return floats(n, () => (inp.positive ? 0.5 + rng.next() : rng.normal()));
  });
  const feeds = (): Record<string, InstanceType<typeof ort.Tensor>> => {
    const out: Record<string, InstanceType<typeof ort.Tensor>> = {};
    inputs.forEach((inp, i) => {
      const v = values[i]!;
      out[`x${i}`] = v instanceof BigInt64Array ? new ort.Tensor("int64", v, inp.shape) : v instanceof Int32Array ? new ort.Tensor("int32", v, inp.shape) : new ort.Tensor(dtype, v as Float64Array, inp.shape);
    });
    return out;
  };
  const yShape = concreteShape(y, inputs);
  const rSize = yShape.reduce((a, c) => a * c, 1);
  const rVal = floats(rSize, () => rng.normal());
  const run = async (): Promise<Record<string, { data: unknown }>> => session.run({ ...feeds(), r: new ort.Tensor(dtype, rVal as Float64Array, yShape) });
  const base = await run();
  const h = options.h ?? (dtype === "float64" ? 1e-5 : 1e-2);
  let maxErr = 0;
  let maxFd = 0;
  let count = 0;
  let k = 0;
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i]!.ints) continue;
    const x = values[i] as Float64Array;
    const g = base[`g${k++}`]!.data as Float64Array;
    for (let j = 0; j < x.length; j++) {
      const x0 = x[j]!;
      x[j] = x0 + h;
      const up = ((await run()).loss!.data as Float64Array)[0]!;
      x[j] = x0 - h;
      const down = ((await run()).loss!.data as Float64Array)[0]!;
      x[j] = x0;
      const fd = (up - down) / (2 * h);
      maxErr = Math.max(maxErr, Math.abs(fd - g[j]!));
      maxFd = Math.max(maxFd, Math.abs(fd));
      count++;
    }
  }
  await session.release();
  return { maxRelError: maxErr / Math.max(maxFd, 1e-12), count };
}

function dimCount(shape: readonly Dim[]): Dim {
  if (shape.length === 0) return 1;
  return shape.every((d) => typeof d === "number") ? (shape as number[]).reduce((a, c) => a * c, 1) : shape.map((d) => (typeof d === "string" && /[+*]/.test(d) ? `(${d})` : d)).join("*");
}

/** y's concrete shape for the given inputs: symbols resolved from the inputs that declare them. */
function concreteShape(y: Value, inputs: CheckInput[]): number[] {
  const env = new Map<string, number>();
  inputs.forEach((inp) => (inp.declared ?? []).forEach((d, i) => typeof d === "string" && env.set(d, inp.shape[i]!)));
  return y.shape.map((d) => evalDim(d, env));
}

function evalDim(d: Dim, env: Map<string, number>): number {
  if (typeof d === "number") return d;
  const s = d.replace(/[A-Za-z_][A-Za-z0-9_]*/g, (m) => {
    const v = env.get(m);
    if (v === undefined) throw new Error(`unbound ${m}`);
    return String(v);
  });
  if (!/^[0-9+*() ]+$/.test(s)) throw new Error(`bad dim ${d}`);
  // A tiny evaluator for sums of products with parentheses.
  return evalExpr(s);
}

function evalExpr(s: string): number {
  let pos = 0;
  const sum = (): number => {
    let v = prod();
    while (s[pos] === "+") {
      pos++;
      v += prod();
    }
    return v;
  };
  const prod = (): number => {
    let v = atom();
    while (s[pos] === "*") {
      pos++;
      v *= atom();
    }
    return v;
  };
  const atom = (): number => {
    if (s[pos] === "(") {
      pos++;
      const v = sum();
      pos++;
      return v;
    }
    const m = /^\d+/.exec(s.slice(pos))!;
    pos += m[0].length;
    return Number(m[0]);
  };
  return sum();
}
