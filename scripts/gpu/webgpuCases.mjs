/**
 * The graphs scripts/gpu/webgpu-check.mjs runs on each execution provider: one per operator the project's graph
 * builder emits, a matmul + softmax, and a combined attention-like graph.
 */
import { ONNX_TYPE, makeData, i64 } from "./onnxBytes.mjs";

// ------------------------------------------------------------------------------------------------ graphs

export function matmulSoftmaxSpec(n) {
  return {
    nodes: [
      { op: "MatMul", name: "matmul", inputs: ["A", "B"], outputs: ["Y"] },
      { op: "Softmax", name: "softmax", inputs: ["Y"], outputs: ["Z"], attrs: { axis: -1 } },
    ],
    inputs: [
      { name: "A", dtype: "float32", shape: [n, n], data: makeData("float32", [n, n]) },
      { name: "B", dtype: "float32", shape: [n, n], data: makeData("float32", [n, n]) },
    ],
    outputs: [
      { name: "Y", dtype: "float32", shape: [n, n] },
      { name: "Z", dtype: "float32", shape: [n, n] },
    ],
  };
}

const F = "float32";
const inp = (name, dtype, shape, gen) => ({ name, dtype, shape, data: makeData(dtype, shape, gen) });
const init = (name, dtype, dims, data) => ({ name, dtype, dims, data });
const out = (name, dtype = F) => ({ name, dtype });
export const one = (op, inputs, attrs, extra = {}) => ({
  nodes: [{ op, name: op.toLowerCase(), inputs: inputs.map((x) => x.name ?? x), outputs: ["Y"], attrs }],
  inputs: inputs.filter((x) => x.data && !x.dims),
  initializers: inputs.filter((x) => x.dims),
  outputs: [out("Y", extra.outDtype ?? F)],
});

const X3 = [2, 8, 16];

/** One graph per operator: [label, spec]. int64 shape/axes operands are initializers, as in real graphs. */
export function opCases() {
  const unary = (op, gen = "sym") => [op, one(op, [inp("X", F, X3, gen)])];
  const binary = (op) => [op, one(op, [inp("X", F, X3), inp("W", F, [16])])];
  return [
    ["MatMul", one("MatMul", [inp("X", F, [2, 8, 16]), inp("W", F, [16, 12])])],
    ["Gather", one("Gather", [inp("E", F, [50, 16]), inp("I", "int64", [2, 7], "int:50")], { axis: 0 })],
    ["Softmax", one("Softmax", [inp("X", F, X3)], { axis: -1 })],
    ["ReduceSum", one("ReduceSum", [inp("X", F, X3), init("axes", "int64", [1], i64(-1))], { keepdims: 1 })],
    binary("Mul"),
    binary("Add"),
    binary("Sub"),
    ["Div", one("Div", [inp("X", F, X3), inp("W", F, [16], "pos")])],
    unary("Sqrt", "pos"),
    unary("Exp"),
    unary("Log", "pos"),
    unary("Neg"),
    ["Where", one("Where", [inp("C", "bool", X3, "bool"), inp("X", F, X3), inp("W", F, X3)])],
    [
      "ScatterND(add)",
      {
        // Repeated indices: the embedding-gradient pattern (rows that repeat add up).
        nodes: [{ op: "ScatterND", name: "scatternd", inputs: ["D", "I", "U"], outputs: ["Y"], attrs: { reduction: "add" } }],
        inputs: [inp("D", F, [10, 16]), { name: "I", dtype: "int64", shape: [6, 1], data: i64(1, 3, 1, 7, 3, 1) }, inp("U", F, [6, 16])],
        outputs: [out("Y")],
      },
    ],
    [
      "ScatterND(none)",
      {
        nodes: [{ op: "ScatterND", name: "scatternd", inputs: ["D", "I", "U"], outputs: ["Y"] }],
        inputs: [inp("D", F, [10, 16]), { name: "I", dtype: "int64", shape: [3, 1], data: i64(1, 3, 7) }, inp("U", F, [3, 16])],
        outputs: [out("Y")],
      },
    ],
    ["Transpose", one("Transpose", [inp("X", F, X3)], { perm: [0, 2, 1] })],
    ["Reshape", one("Reshape", [inp("X", F, X3), init("shape", "int64", [2], i64(16, -1))])],
    ["Concat", one("Concat", [inp("X", F, X3), inp("W", F, [2, 3, 16])], { axis: 1 })],
    [
      "Slice",
      one("Slice", [inp("X", F, X3), init("starts", "int64", [2], i64(1, 0)), init("ends", "int64", [2], i64(7, 16)), init("axes", "int64", [2], i64(1, 2)), init("steps", "int64", [2], i64(2, 3))]),
    ],
    ["Expand", one("Expand", [inp("X", F, [1, 16]), init("shape", "int64", [3], i64(2, 8, 16))])],
    ["Cast(float->int32)", one("Cast", [inp("X", F, X3)], { to: ONNX_TYPE.int32 }, { outDtype: "int32" })],
    ["Cast(int64->float)", one("Cast", [inp("X", "int64", X3, "int:100")], { to: ONNX_TYPE.float32 })],
    ["Cast(bool->float)", one("Cast", [inp("X", "bool", X3, "bool")], { to: ONNX_TYPE.float32 })],
    ["Cast(float->int64)", one("Cast", [inp("X", F, X3)], { to: ONNX_TYPE.int64 }, { outDtype: "int64" })],
    ["Equal(int64)", one("Equal", [inp("X", "int64", X3, "int:4"), init("K", "int64", [], i64(2))], undefined, { outDtype: "bool" })],
    ["Equal(float)", one("Equal", [inp("X", F, X3, "int:4"), inp("W", F, X3, "int:4")], undefined, { outDtype: "bool" })],
    // int64 as data (not as indices or shapes): how the EP treats token-id arithmetic, and int32 alternatives.
    ["Equal(int32)", one("Equal", [inp("X", "int32", X3, "int:4"), inp("W", "int32", X3, "int:4")], undefined, { outDtype: "bool" })],
    ["Cast(int32->float)", one("Cast", [inp("X", "int32", X3, "int:100")], { to: ONNX_TYPE.float32 })],
    ["Cast(int64->int32)", one("Cast", [inp("X", "int64", X3, "int:100")], { to: ONNX_TYPE.int32 }, { outDtype: "int32" })],
    ["Reshape(int64 data)", one("Reshape", [inp("X", "int64", X3, "int:100"), init("shape", "int64", [2], i64(16, -1))], undefined, { outDtype: "int64" })],
    ["Unsqueeze(int64 data)", one("Unsqueeze", [inp("X", "int64", X3, "int:100"), init("axes", "int64", [1], i64(-1))], undefined, { outDtype: "int64" })],
    ["Concat(int64 data)", one("Concat", [inp("X", "int64", X3, "int:100"), inp("W", "int64", X3, "int:100")], { axis: 0 }, { outDtype: "int64" })],
    ["Gather(int32 indices)", one("Gather", [inp("E", F, [50, 16]), inp("I", "int32", [2, 7], "int:50")], { axis: 0 })],
    // Further ops the project's graph builder emits (src/core/engine/ort).
    unary("Sigmoid"),
    unary("Relu"),
    unary("Abs"),
    unary("Tanh"),
    unary("Softplus"),
    unary("Reciprocal", "pos"),
    ["Pow", one("Pow", [inp("X", F, X3, "pos"), inp("W", F, [16])])],
    ["LogSoftmax", one("LogSoftmax", [inp("X", F, X3)], { axis: -1 })],
    ["ReduceMean", one("ReduceMean", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["ReduceSumSquare", one("ReduceSumSquare", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["ReduceMax", one("ReduceMax", [inp("X", F, X3)], { axes: [-1], keepdims: 1 })],
    ["Sum(3)", one("Sum", [inp("X", F, X3), inp("W", F, X3), inp("V", F, X3)])],
    ["Max", one("Max", [inp("X", F, X3), inp("W", F, X3)])],
    ["Min", one("Min", [inp("X", F, X3), inp("W", F, X3)])],
    ["Greater", one("Greater", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["Less", one("Less", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["GreaterOrEqual", one("GreaterOrEqual", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["LessOrEqual", one("LessOrEqual", [inp("X", F, X3), inp("W", F, X3)], undefined, { outDtype: "bool" })],
    ["Gemm(transB)", one("Gemm", [inp("X", F, [8, 16]), inp("W", F, [12, 16]), inp("V", F, [8, 12])], { transB: 1 })],
    ["Unsqueeze", one("Unsqueeze", [inp("X", F, X3), init("axes", "int64", [1], i64(-1))])],
    ["Squeeze", one("Squeeze", [inp("X", F, [2, 1, 16]), init("axes", "int64", [1], i64(1))])],
    [
      "Split",
      {
        nodes: [{ op: "Split", name: "split", inputs: ["X", "sizes"], outputs: ["Y", "Y2"], attrs: { axis: -1 } }],
        inputs: [inp("X", F, X3)],
        initializers: [init("sizes", "int64", [2], i64(6, 10))],
        outputs: [out("Y"), out("Y2")],
      },
    ],
    ["GatherElements", one("GatherElements", [inp("X", F, X3), inp("I", "int64", [2, 8, 1], "int:16")], { axis: -1 })],
    ["ScatterElements(add)", one("ScatterElements", [inp("X", F, X3), inp("I", "int64", [2, 8, 1], "int:16"), inp("U", F, [2, 8, 1])], { axis: -1, reduction: "add" })],
    ["Range", one("Range", [inp("S", F, [], "int:3"), init("L", F, [], Float32Array.of(20)), init("D", F, [], Float32Array.of(1.5))])],
    [
      "Shape+ConstantOfShape",
      {
        nodes: [
          { op: "Shape", name: "shape", inputs: ["X"], outputs: ["S"] },
          { op: "ConstantOfShape", name: "constantofshape", inputs: ["S"], outputs: ["Y"], attrs: { value: { tensor: { dtype: F, dims: [1], data: Float32Array.of(0.5) } } } },
        ],
        // A symbolic batch dimension, or ORT folds Shape → ConstantOfShape into a constant.
        inputs: [{ ...inp("X", F, X3), shape: X3, symbolic: ["batch", 8, 16] }],
        outputs: [out("Y")],
      },
    ],
    ["Identity", one("Identity", [inp("X", F, X3)])],
  ];
}

/**
 * A forward+backward-flavoured slice of a transformer step: embedding Gather, RMS-style norm, attention scores,
 * masked softmax, log-softmax NLL via GatherElements, and the embedding gradient via ScatterND(add).
 */
export function combinedSpec() {
  const V = 64, D = 32, T = 16, B = 2;
  const n = (op, inputs, outputs, attrs) => ({ op, inputs, outputs, attrs });
  return {
    nodes: [
      n("Gather", ["E", "tok"], ["h"], { axis: 0 }), // [B,T,D]
      n("Mul", ["h", "h"], ["h2"]),
      n("ReduceSum", ["h2", "axL"], ["ss"], { keepdims: 1 }),
      n("Div", ["ss", "Dk"], ["ms"]),
      n("Add", ["ms", "eps"], ["mse"]),
      n("Sqrt", ["mse"], ["rms"]),
      n("Div", ["h", "rms"], ["hn"]),
      n("MatMul", ["hn", "Wq"], ["q"]),
      n("MatMul", ["hn", "Wk"], ["k"]),
      n("Transpose", ["k"], ["kT"], { perm: [0, 2, 1] }),
      n("MatMul", ["q", "kT"], ["s"]),
      n("Where", ["mask", "s", "ninf"], ["sm"]),
      n("Softmax", ["sm"], ["p"], { axis: -1 }),
      n("MatMul", ["p", "hn"], ["ctx"]),
      n("Concat", ["ctx", "hn"], ["cat"], { axis: -1 }),
      n("Reshape", ["cat", "shp2"], ["flat"]), // [B*T, 2D]
      n("MatMul", ["flat", "Wo"], ["logits"]), // [B*T, V]
      n("Exp", ["logits"], ["el"]),
      n("ReduceSum", ["el", "axL"], ["se"], { keepdims: 1 }),
      n("Log", ["se"], ["lse"]),
      n("Sub", ["logits", "lse"], ["lp"]),
      n("Reshape", ["tok", "shp1"], ["tgt1"]),
      n("Unsqueeze", ["tgt1", "axL"], ["tgt"]),
      n("GatherElements", ["lp", "tgt"], ["tlp"], { axis: -1 }),
      n("Neg", ["tlp"], ["nll"]),
      n("Equal", ["tgt", "pad"], ["isPad"]),
      n("Cast", ["isPad"], ["padF"], { to: ONNX_TYPE.float32 }),
      n("Sub", ["one", "padF"], ["keep"]),
      n("Mul", ["nll", "keep"], ["nllk"]),
      n("ReduceSum", ["nllk", "ax0"], ["loss"], { keepdims: 0 }),
      n("Slice", ["hn", "st", "en", "ax1"], ["hs"]),
      n("Expand", ["rms", "shpE"], ["rmsE"]),
      n("Mul", ["hs", "rmsE"], ["g"]),
      n("Reshape", ["g", "shpG"], ["gflat"]),
      n("Reshape", ["tok", "shpI"], ["idx"]),
      n("ScatterND", ["Ezero", "idx", "gflat"], ["dE"], { reduction: "add" }),
    ].map((x, i) => ({ ...x, name: `${x.op.toLowerCase()}_${i}` })),
    inputs: [
      inp("E", F, [V, D]),
      inp("tok", "int64", [B, T], "int:" + V),
      inp("Wq", F, [D, D]),
      inp("Wk", F, [D, D]),
      inp("Wo", F, [2 * D, V]),
      inp("mask", "bool", [B, T, T], "bool"),
      { name: "Ezero", dtype: F, shape: [V, D], data: new Float32Array(V * D) },
    ],
    initializers: [
      init("axL", "int64", [1], i64(-1)),
      init("ax0", "int64", [1], i64(0)),
      init("ax1", "int64", [1], i64(1)),
      init("Dk", F, [], Float32Array.of(D)),
      init("eps", F, [], Float32Array.of(1e-5)),
      init("ninf", F, [], Float32Array.of(-1e9)),
      init("one", F, [], Float32Array.of(1)),
      init("pad", "int64", [], i64(0)),
      init("shp1", "int64", [1], i64(B * T)),
      init("shp2", "int64", [2], i64(B * T, 2 * D)),
      init("st", "int64", [1], i64(0)),
      init("en", "int64", [1], i64(T)),
      init("shpE", "int64", [3], i64(B, T, D)),
      init("shpG", "int64", [2], i64(B * T, D)),
      init("shpI", "int64", [2], i64(B * T, 1)),
    ],
    outputs: [out("loss"), out("dE"), out("p")],
  };
}
