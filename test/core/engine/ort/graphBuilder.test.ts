import { test } from "node:test";
import assert from "node:assert/strict";
import { gradCheck, type CheckInput } from "./gradCheck";
import { GraphBuilder } from "../../../../src/core/engine/ort/onnx/graphBuilder";
import type { Value } from "../../../../src/core/engine/ort/onnx/graphRecorder";
import { rmsNorm, rope, swiglu, tokenLogProbs } from "../../../../src/core/engine/ort/llama/llamaOps";
import { createSession, loadOrt } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { decodeModel } from "../../../../src/core/engine/ort/onnx/onnxProto";

// Every VJP rule of the builder against float64 central differences of the same graph: a wrong rule shows
// as a relative error of order 1, a right one at ~1e-9.
const TOL = 1e-6;

async function check(name: string, inputs: CheckInput[], f: (b: GraphBuilder, xs: Value[]) => Value): Promise<void> {
  const r = await gradCheck(inputs, f);
  assert.ok(r.count > 0, `${name}: nothing compared`);
  assert.ok(r.maxRelError < TOL, `${name}: autodiff vs finite differences, max relative error ${r.maxRelError.toExponential(2)}`);
}

test("element-wise VJPs with broadcasting (add, sub, mul, div, neg, exp, log, sqrt, reciprocal, sigmoid, softplus)", async () => {
  await check("add", [{ shape: [3, 4] }, { shape: [4] }], (b, [x, y]) => b.add(x!, y!));
  await check("add [2,1,4]+[3,1]", [{ shape: [2, 1, 4] }, { shape: [3, 1] }], (b, [x, y]) => b.add(x!, y!));
  await check("sub", [{ shape: [2, 3] }, { shape: [2, 1] }], (b, [x, y]) => b.sub(x!, y!));
  await check("mul", [{ shape: [2, 3, 4] }, { shape: [3, 1] }], (b, [x, y]) => b.mul(x!, y!));
  await check("mul same input", [{ shape: [5] }], (b, [x]) => b.mul(x!, x!));
  await check("div", [{ shape: [3, 4] }, { shape: [1, 4], positive: true }], (b, [x, y]) => b.div(x!, y!));
  await check("neg", [{ shape: [4] }], (b, [x]) => b.neg(x!));
  await check("exp", [{ shape: [2, 3] }], (b, [x]) => b.exp(x!));
  await check("log", [{ shape: [2, 3], positive: true }], (b, [x]) => b.log(x!));
  await check("sqrt", [{ shape: [2, 3], positive: true }], (b, [x]) => b.sqrt(x!));
  await check("reciprocal", [{ shape: [2, 3], positive: true }], (b, [x]) => b.reciprocal(x!));
  await check("sigmoid", [{ shape: [2, 3] }], (b, [x]) => b.sigmoid(x!));
  await check("softplus (float64 composite)", [{ shape: [6] }], (b, [x]) => b.softplus(b.mul(x!, b.scalar(5))));
  // ORT's Softplus kernel is float32 only: checked in float32 with a float32-sized step.
  const r = await gradCheck([{ shape: [6] }], (b, [x]) => b.softplus(x!), { dtype: "float32", h: 1e-2 });
  assert.ok(r.maxRelError < 1e-3, `softplus float32: ${r.maxRelError}`);
});

test("shape VJPs (reshape and transpose with symbolic dims, concat, split, unsqueeze, squeeze, expand)", async () => {
  await check("reshape", [{ shape: [2, 3, 4], declared: ["B", "T", 4] }], (b, [x]) => b.reshape(x!, ["B*T", 2, 2]));
  await check("transpose", [{ shape: [2, 3, 4] }], (b, [x]) => b.transpose(x!, [2, 0, 1]));
  await check("concat", [{ shape: [2, 3], declared: [2, "P"] }, { shape: [2, 2], declared: [2, "T"] }], (b, [x, y]) => b.mul(b.concat([x!, y!], 1), b.concat([y!, x!], 1)));
  await check("split", [{ shape: [2, 5], declared: [2, "N"] }], (b, [x]) => {
    const [p, q] = b.split(x!, 1, [2, 3]);
    return b.concat([b.mul(q!, q!), p!], 1);
  });
  await check("split, one part unused", [{ shape: [4, 3] }], (b, [x]) => b.split(x!, 0, [1, 3])[1]!);
  await check("unsqueeze/squeeze", [{ shape: [3, 1, 2] }], (b, [x]) => b.unsqueeze(b.squeeze(x!, [1]), [0, 3]));
  await check("expand", [{ shape: [3, 1] }], (b, [x]) => b.expand(x!, [2, 3, 4]));
});

test("reduction VJPs (sum and mean, keepdims or not)", async () => {
  await check("reduceSum keep", [{ shape: [2, 3, 4] }], (b, [x]) => b.reduceSum(x!, [1], true));
  await check("reduceSum drop", [{ shape: [2, 3, 4] }], (b, [x]) => b.reduceSum(x!, [0, 2], false));
  await check("reduceMean keep", [{ shape: [2, 3, 4] }], (b, [x]) => b.reduceMean(x!, [-1], true));
  await check("reduceMean drop", [{ shape: [2, 3, 4] }], (b, [x]) => b.reduceMean(x!, [0, 1], false));
});

test("linear algebra VJPs (batched matmul with broadcasting, gemm with every transpose)", async () => {
  await check("matmul batched", [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], (b, [x, y]) => b.matmul(x!, y!));
  await check("matmul broadcast rhs", [{ shape: [2, 3, 4, 5] }, { shape: [5, 2] }], (b, [x, y]) => b.matmul(x!, y!));
  await check("matmul broadcast both", [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }], (b, [x, y]) => b.matmul(x!, y!));
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    await check(`gemm transA=${ta} transB=${tb}`, [{ shape: ta ? [4, 3] : [3, 4] }, { shape: tb ? [5, 4] : [4, 5] }], (b, [x, y]) => b.gemm(x!, y!, ta, tb));
  }
  // The addend: a residual of the result's shape, or a bias [N] broadcast over rows (its gradient sums them),
  // with a symbolic row count as the engine's [B*T, D] activations have.
  await check("gemm + residual", [{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [3, 5] }], (b, [x, y, c]) => b.gemm(x!, y!, false, true, c!));
  await check("gemm + bias", [{ shape: [3, 4], declared: ["N", 4] }, { shape: [5, 4] }, { shape: [5] }], (b, [x, y, c]) => b.gemm(x!, y!, false, true, c!));
  const g = new GraphBuilder("g");
  assert.throws(() => g.gemm(g.input("a", "float32", [3, 4]), g.input("b", "float32", [4, 5]), false, false, g.input("c", "float32", [3])), /gemm addend \[3\] is neither \[3,5\] nor \[5\]/);
});

test("gather VJP: repeated rows add up", async () => {
  await check("gather", [{ shape: [5, 3] }, { shape: [2, 3], ints: { values: [0, 2, 2, 4, 0, 0], dtype: "int32" } }], (b, [e, i]) => b.gather(e!, i!));
});

test("softmax and log-softmax VJPs", async () => {
  await check("softmax", [{ shape: [2, 3, 5] }], (b, [x]) => b.softmax(x!));
  await check("logSoftmax", [{ shape: [3, 5] }], (b, [x]) => b.logSoftmax(x!));
});

test("composite VJPs: RMSNorm, SwiGLU, RoPE, token log-probabilities", async () => {
  await check("rmsNorm", [{ shape: [2, 3, 6] }, { shape: [6] }], (b, [x, w]) => rmsNorm(b, x!, w!, 1e-5));
  // Per head, as qwen3's q_norm / k_norm: [B, T, heads, hd] over hd.
  await check("rmsNorm per head", [{ shape: [2, 3, 2, 6], declared: ["B", "T", 2, 6] }, { shape: [6] }], (b, [x, w]) => rmsNorm(b, x!, w!, 1e-6));
  await check("swiglu", [{ shape: [3, 4] }, { shape: [3, 4] }], (b, [g, u]) => swiglu(b, g!, u!));
  // cos and sin carry no gradient: fixed tables, broadcast over batch and heads.
  await check("rope", [{ shape: [2, 2, 3, 4] }], (b, [x]) => {
    const cos = b.constant([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2], [3, 4]);
    const sin = b.constant([-0.5, 0.4, 0.5, -0.4, 0.3, -0.2, -0.3, 0.2, 0.1, 0.9, -0.1, -0.9], [3, 4]);
    return rope(b, x!, cos, sin);
  });
  await check("tokenLogProbs", [{ shape: [4, 6] }, { shape: [4], ints: { values: [5, 0, 0, 3], dtype: "int32" } }], (b, [l, t]) => tokenLogProbs(b, l!, t!));
  await check("tokenLogProbs (spelled out, device graphs)", [{ shape: [4, 6] }, { shape: [4], ints: { values: [5, 0, 0, 3], dtype: "int32" } }], (b, [l, t]) => tokenLogProbs(b, l!, t!, true));
});

test("a chain through several ops accumulates gradients of a value used twice", async () => {
  await check("chain", [{ shape: [3, 4] }, { shape: [4, 4] }, { shape: [4] }], (b, [x, w, n]) => {
    const h = rmsNorm(b, x!, n!, 1e-6);
    const y = b.gemm(h, w!, false, true);
    return b.softmax(b.add(b.mul(y, h), x!));
  });
});

test("float attributes are encoded as FLOAT, integers as INT: ORT runs LeakyRelu with alpha 1.0", async () => {
  const ort = loadOrt();
  const b = new GraphBuilder("attrs", "float32");
  const x = b.input("x", "float32", ["N"]);
  const y = b.emit("LeakyRelu", [x], [{ dtype: "float32", shape: ["N"] }], { alpha: { float: 1 } })[0]!;
  b.output(b.reduceSum(y, [0], false), "s");
  const bytes = b.toBytes();
  const node = decodeModel(bytes).graph.node.find((n) => n.op_type === "LeakyRelu")!;
  assert.deepEqual(node.attribute.map((a) => [a.name, a.type, a.f]), [["alpha", 1, 1]]);
  const s = await createSession(bytes, { threads: 1 });
  const out = await s.run({ x: new ort.Tensor("float32", Float32Array.from([1, -2, 3]), [3]) });
  assert.equal((out.s!.data as Float32Array)[0], 2);
  assert.throws(() => b.emit("LeakyRelu", [x], [{ dtype: "float32", shape: ["N"] }], { alpha: 0.5 }), /write \{ float: 0.5 \}/);
});

test("a gradient through an op without a rule is refused, not silently dropped", () => {
  const b = new GraphBuilder("norule", "float32");
  const x = b.input("x", "float32", [3]);
  const y = b.emit("Abs", [x], [{ dtype: "float32", shape: [3] }])[0]!;
  assert.throws(() => b.gradients(b.reduceSum(y, [0], false), [x]), /no gradient rule for Abs/);
});

test("a gradient shared by two inputs is not rewritten when one of them accumulates (Gemm addend peephole)", async () => {
  // Add hands the same gradient (a fresh Gemm, from out's VJP) to both addends; `a` already has a gradient
  // from its later use, so it accumulates. Folding that accumulation into the shared Gemm as its addend would
  // also change bb's gradient.
  await check("shared gradient", [{ shape: [3, 4] }, { shape: [4, 4] }, { shape: [4, 4] }, { shape: [4, 4] }], (b, [x, w, u, z]) => {
    const a = b.gemm(x!, w!);
    const bb = b.gemm(x!, u!);
    const out = b.gemm(b.add(a, bb), z!);
    return b.add(out, b.gemm(a, z!, false, true));
  });
});

test("outputs are named on their producing node; an Identity copies only a graph input, a constant or a second name", async () => {
  const ort = loadOrt();
  const b = new GraphBuilder("outputs", "float32");
  const x = b.input("x", "float32", ["N"]);
  const y = b.exp(x);
  const z = b.add(y, b.scalar(1)); // reads y before it is renamed
  b.output(y, "y");
  const w = b.mul(y, y); // and after
  b.output(z, "z");
  b.output(w, "w");
  b.output(w, "w_again"); // a second name for the same value
  b.output(x, "x_out"); // a graph input passed through
  b.output(b.scalar(3), "three"); // a constant
  assert.throws(() => b.output(w, "z"), /output name z is taken/);
  const model = decodeModel(b.toBytes()).graph;
  assert.equal(model.node.filter((n) => n.op_type === "Identity").length, 3);
  assert.deepEqual(model.node.find((n) => n.op_type === "Exp")!.output, ["y"]);
  assert.deepEqual(model.node.find((n) => n.op_type === "Mul")!.input, ["y", "y"]);
  const s = await createSession(b.toBytes(), { threads: 1 });
  const out = await s.run({ x: new ort.Tensor("float32", Float32Array.from([0, 1]), [2]) });
  const e = Math.fround(Math.E);
  assert.deepEqual([...(out.y!.data as Float32Array)], [1, e]);
  assert.deepEqual([...(out.z!.data as Float32Array)], [2, Math.fround(e + 1)]);
  assert.deepEqual([...(out.w!.data as Float32Array)], [1, Math.fround(e * e)]);
  assert.deepEqual([...(out.w_again!.data as Float32Array)], [1, Math.fround(e * e)]);
  assert.deepEqual([...(out.x_out!.data as Float32Array)], [0, 1]);
  assert.deepEqual([...(out.three!.data as Float32Array)], [3]);
  await s.release();
});
