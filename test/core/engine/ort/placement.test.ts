// Where the real graphs' nodes run on the webgpu provider (issue 22): every node of the SFT, DPO, log-prob,
// decoding, optimizer and state-moving graphs on the WebGPU provider, except the int64 shape arithmetic that ONNX
// Runtime runs on the CPU by design, and no tensor copied between the two inside a run. A node whose op (or type)
// the WebGPU provider lacks falls back to the CPU silently, and its tensors cross at every run.
//
// ORT names every node's provider in its verbose log as it opens a session ("Node placements"); the log goes to
// the process's stderr, which only a parent can read. So the test at the end runs this file again as a script in
// a child on Mesa's software GPU (STS_PLACEMENT_DUMP=1), where it opens each graph's session as the engine does,
// and reads the child's log.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { runScriptOnSoftwareGpu, softwareGpuSkip } from "../../../helpers/softwareGpu";
import { GraphBuilder } from "../../../../src/core/engine/ort/onnx/graphBuilder";
import { VOCAB_CHUNK_ROWS } from "../../../../src/core/engine/ort/llama/vocabularyChunks";
import { decodeGraph, dpoGraph, logProbGraph, sftGraph } from "../../../../src/core/engine/ort/llama/llamaGraphs";
import { moveGraph, optimizerGraph, zerosGraph } from "../../../../src/core/engine/ort/runtime/stateGraphs";
import { deviceOutputs, slotsOf, splitSlots } from "../../../../src/core/engine/ort/runtime/modelState";
import { decodeOutputLocations } from "../../../../src/core/engine/ort/runtime/kvCache";
import { createSession, type SessionChoices, type SessionSettings } from "../../../../src/core/engine/ort/runtime/ortRuntime";
import { OnnxDataType, type ModelProtoJson } from "../../../../src/core/engine/ort/onnx/onnxProto";
import type { RowBlocks } from "../../../../src/core/engine/ort/llama/rowBlocks";
import { tinyConfig, type ModelConfig } from "../../../../src/core/model/config";
import { FAMILIES } from "../engineFixtures";

const WEBGPU = "WebGpuExecutionProvider";
const CPU = "CPUExecutionProvider";

/**
 * Ops that ORT may run on the CPU when they compute shapes: the WebGPU provider has no int64 kernels for them,
 * and ORT keeps shape arithmetic on the CPU anyway (the consumers read shapes from host memory: Reshape's and
 * Expand's shape, Slice's bounds, Split's sizes). Allowed only where every input is a shape (a Shape node's output)
 * or an int64 constant, or is made from those by these ops (shapeValues): a few int64 values, built from
 * the inputs' dimensions (a Concat of [B, T, H, hd], a product B·T), that never touch a tensor's data. None of
 * them can make a value larger than its inputs together (no Range, Expand, Tile or ConstantOfShape).
 */
const SHAPE_ARITHMETIC_OPS = new Set(["Shape", "Concat", "Add", "Sub", "Mul", "Div", "Squeeze", "Unsqueeze", "Gather", "Slice"]);

/** ORT's copies between providers inside a session: there should be none. */
const COPY_OPS = new Set(["MemcpyFromHost", "MemcpyToHost"]);

interface PlacedNode {
  provider: string;
  op: string;
  name: string;
}

/** One session's "Node placements": nodes per provider, and the nodes listed (ORT lists none when all are on one). */
interface SessionPlacement {
  counts: Map<string, number>;
  nodes: PlacedNode[];
}

/** The node placements in ORT's verbose log, by session log id. */
function parsePlacements(log: string): Map<string, SessionPlacement> {
  const sessions = new Map<string, SessionPlacement>();
  const provider = new Map<string, string>();
  for (const line of log.split("\n")) {
    const m = /\[V:onnxruntime:([^,\]]*), session_state\.cc:\d+ VerifyEachNodeIsAssignedToAnEp\] (.*)$/.exec(line);
    if (!m) continue;
    const id = m[1]!;
    const text = m[2]!;
    if (text.startsWith("Node placements")) {
      sessions.set(id, { counts: new Map(), nodes: [] });
      continue;
    }
    const s = sessions.get(id);
    if (!s) continue;
    const head = /placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(text);
    if (head) {
      provider.set(id, head[1]!);
      s.counts.set(head[1]!, Number(head[2]));
      continue;
    }
    const node = /^\s+(\S+) \((.*)\)$/.exec(text);
    if (node && provider.has(id)) s.nodes.push({ provider: provider.get(id)!, op: node[1]!, name: node[2]! });
  }
  return sessions;
}

/** The names of the model's values that are int64 shape arithmetic: Shape outputs, int64 constants, and SHAPE_ARITHMETIC_OPS over those. */
function shapeValues(model: ModelProtoJson): Set<string> {
  const shapes = new Set(model.graph.initializer.filter((t) => t.data_type === OnnxDataType.INT64).map((t) => t.name!));
  // Nodes come in topological order (GraphRecorder emits them so).
  for (const n of model.graph.node) {
    const fromShapes = n.op_type === "Shape" || (SHAPE_ARITHMETIC_OPS.has(n.op_type) && n.input.every((i) => i === "" || shapes.has(i)));
    if (fromShapes) for (const o of n.output) shapes.add(o);
  }
  return shapes;
}

/** What keeps a session from running wholly on the device: nodes on another provider that are not shape arithmetic, and copies. */
function offPlacement(model: ModelProtoJson, placed: SessionPlacement): { offDevice: PlacedNode[]; copies: PlacedNode[]; shapeArithmetic: PlacedNode[] } {
  const shapes = shapeValues(model);
  const byName = new Map(model.graph.node.map((n) => [n.name, n]));
  const offDevice: PlacedNode[] = [];
  const shapeArithmetic: PlacedNode[] = [];
  for (const p of placed.nodes) {
    if (p.provider === WEBGPU) continue;
    // A node ORT made (a fusion) or renamed is not ours to vouch for: it counts against the graph.
    const n = byName.get(p.name);
    const arithmetic = p.provider === CPU && n !== undefined && n.op_type === p.op && n.output.every((o) => shapes.has(o));
    (arithmetic ? shapeArithmetic : offDevice).push(p);
  }
  // Providers ORT only counted (all of a session's nodes on one) must be the device's.
  for (const [provider, count] of placed.counts) if (provider !== WEBGPU && !placed.nodes.some((p) => p.provider === provider)) offDevice.push({ provider, op: `${count} nodes`, name: "(not listed)" });
  return { offDevice, copies: placed.nodes.filter((p) => COPY_OPS.has(p.op)), shapeArithmetic };
}

interface GraphCase {
  /** The session's log id: what the graph is, of which model. */
  id: string;
  graph: GraphBuilder;
  choices: SessionChoices;
}

const tiny = tinyConfig(64, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
// An untied model whose 256-row vocabulary takes the paths of a large one on the device: the output projection in
// chunks (vocabChunkRows, as above VOCAB_CHUNK_ROWS) and, with buffers of 12 KiB, both tables in row blocks
// (86, 86 and 84 rows, as Qwen3-1.7B's embedding past 1 GiB).
const wide: ModelConfig = { ...tiny, vocab_size: 256, tie_word_embeddings: false };
const WIDE_CHUNK_ROWS = 64;

/** The graphs the webgpu engine opens (OrtEngine, OrtDecoding, DeviceState), with the same options and session choices. */
function graphCases(): GraphCase[] {
  const cases: GraphCase[] = [];
  const model = (label: string, c: ModelConfig, chunkRows: number, blocks?: RowBlocks): void => {
    const o = { vocabChunkRows: chunkRows, ...(blocks ? { blocks } : {}) };
    // OrtEngine.session: training graphs accumulate on the device; state outputs stay there.
    const training = { memoryPattern: false } as const;
    for (const [kind, graph] of [
      ["sft", sftGraph(c, { ...o, accumulateGradients: true })],
      ["dpo", dpoGraph(c, { ...o, accumulateGradients: true })],
      ["logprobs", logProbGraph(c, o)],
    ] as const) {
      cases.push({ id: `${kind}:${label}`, graph, choices: { ...training, outputLocations: deviceOutputs(graph.outputNames()) } });
    }
    // OrtDecoding on a device: the Concat form, its KV cache kept in GPU buffers.
    const decode = decodeGraph(c, blocks ? { blocks } : {});
    cases.push({ id: `decode:${label}`, graph: decode, choices: { outputLocations: decodeOutputLocations(decode.outputNames()) } });
  };
  const state = (label: string, c: ModelConfig, limitBytes?: number): void => {
    const slots = limitBytes === undefined ? slotsOf(c) : splitSlots(slotsOf(c), limitBytes).slots;
    // DeviceState.session: upload (the move graph, outputs on the device) and download (on the host).
    for (const [kind, graph, onDevice] of [
      ["optimizer", optimizerGraph(slots), true],
      ["upload", moveGraph(slots), true],
      ["download", moveGraph(slots), false],
      ["zeros", zerosGraph(slots), true],
    ] as const) {
      cases.push({ id: `${kind}:${label}`, graph, choices: { spin: false, cpuFallback: false, ...(onDevice ? { outputLocations: deviceOutputs(graph.outputNames()) } : {}) } });
    }
  };
  // On a device the engine always passes VOCAB_CHUNK_ROWS: these vocabularies fit one chunk (whole logits).
  model("llama", tiny, VOCAB_CHUNK_ROWS);
  for (const [name, c] of Object.entries(FAMILIES)) model(name, c, VOCAB_CHUNK_ROWS);
  model("chunked", wide, WIDE_CHUNK_ROWS);
  const blocks = splitSlots(slotsOf(wide), 12 * 1024).blocks;
  model("row-blocks", wide, WIDE_CHUNK_ROWS, blocks);
  state("llama", tiny);
  state("row-blocks", wide, 12 * 1024);
  return cases;
}

/** A float64 graph: the WebGPU provider has no float64 kernels, so its node runs on the CPU. */
function float64Graph(): GraphBuilder {
  const b = new GraphBuilder("float64", "float64");
  b.output(b.mul(b.input("x", "float64", [4]), b.scalar(2)), "y");
  return b;
}

/** The child: opens every session on webgpu with the verbose log, and says on stdout (JSON lines) which failed. */
async function dump(): Promise<void> {
  const settings: SessionSettings = { executionProvider: "webgpu", threads: 1 };
  const say = (x: Record<string, string | boolean>): void => void process.stdout.write(`${JSON.stringify(x)}\n`);
  for (const c of graphCases()) {
    try {
      await (await createSession(c.graph.toBytes(), settings, { ...c.choices, verboseLog: { id: c.id } })).release();
      say({ id: c.id, opened: true });
    } catch (e) {
      say({ id: c.id, opened: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  // cpuFallback: false refuses a graph with a node on the CPU, which opens without it.
  for (const strict of [false, true]) {
    try {
      await (await createSession(float64Graph().toBytes(), settings, strict ? { cpuFallback: false } : {})).release();
      say({ id: `float64:${strict ? "strict" : "lenient"}`, opened: true });
    } catch (e) {
      say({ id: `float64:${strict ? "strict" : "lenient"}`, opened: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
}

if (process.env["STS_PLACEMENT_DUMP"] === "1") {
  void dump().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  test("the placement check allows int64 shape arithmetic on the CPU, and nothing else (a made-up log)", () => {
    const b = new GraphBuilder("made_up", "float32");
    const x = b.input("x", "float32", ["B", "T", 4]);
    // A reshape to [B*T, 4]: its shape is Concat(Mul(Shape, Shape), 4), shape arithmetic; LogSoftmax is not.
    const y = b.emit1("LogSoftmax", [b.reshape(x, ["B*T", 4])], "float32", ["B*T", 4], { axis: -1 });
    b.output(y, "y");
    const model = b.toModel();
    const node = (op: string): string => model.graph.node.find((n) => n.op_type === op)!.name;
    const line = (text: string): string => `2026-01-01 00:00:00.0 [V:onnxruntime:made-up, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp] ${text}`;
    const log = [
      line("Node placements"),
      line(` Node(s) placed on [${CPU}]. Number of nodes: 3`),
      line(`  Mul (${node("Mul")})`),
      line(`  Concat (${node("Concat")})`),
      line(`  LogSoftmax (${node("LogSoftmax")})`),
      line(` Node(s) placed on [${WEBGPU}]. Number of nodes: 4`),
      line(`  Shape (${node("Shape")})`),
      line(`  Reshape (${node("Reshape")})`),
      line("  MemcpyToHost (Memcpy_token_0)"),
      line("  MemcpyFromHost (Memcpy)"),
      "an unrelated line",
    ].join("\n");
    const placed = parsePlacements(log).get("made-up")!;
    assert.deepEqual(Object.fromEntries(placed.counts), { [CPU]: 3, [WEBGPU]: 4 });
    const r = offPlacement(model, placed);
    assert.deepEqual(r.offDevice.map((p) => p.op), ["LogSoftmax"]);
    assert.deepEqual(r.shapeArithmetic.map((p) => p.op), ["Mul", "Concat"]);
    assert.deepEqual(r.copies.map((p) => p.op), ["MemcpyToHost", "MemcpyFromHost"]);
    // All on one provider: ORT gives the count only.
    const all = parsePlacements([line("Node placements"), line(` All nodes placed on [${CPU}]. Number of nodes: 2`)].join("\n")).get("made-up")!;
    assert.deepEqual(offPlacement(model, all).offDevice, [{ provider: CPU, op: "2 nodes", name: "(not listed)" }]);
  });

  test("on webgpu every node of the real graphs runs on the WebGPU provider, but ORT's int64 shape arithmetic, and nothing is copied between providers (software GPU)", { skip: softwareGpuSkip, timeout: 300_000 }, async (t) => {
    const r = runScriptOnSoftwareGpu(resolve(__dirname, "placement.test.ts"), { STS_PLACEMENT_DUMP: "1" }, { timeoutMs: 290_000 });
    assert.equal(r.status, 0, `the webgpu child failed:\n${r.stdout}\n${r.stderr.slice(-4000)}`);
    const said = new Map(
      r.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { id: string; opened: boolean; error?: string })
        .map((x) => [x.id, x]),
    );
    const placements = parsePlacements(r.stderr);
    for (const c of graphCases()) {
      await t.test(c.id, (st) => {
        const s = said.get(c.id);
        assert.ok(s, `${c.id}: the child did not open it`);
        assert.ok(s.opened, `${c.id}: the session did not open on webgpu: ${s.error}`);
        const placed = placements.get(c.id);
        assert.ok(placed, `${c.id}: no node placements in ORT's verbose log (has its format changed?)`);
        const { offDevice, copies, shapeArithmetic } = offPlacement(c.graph.toModel(), placed);
        const list = (xs: PlacedNode[]): string => xs.map((p) => `${p.op} ${p.name} (${p.provider})`).join(", ");
        assert.deepEqual(offDevice, [], `${c.id}: ${offDevice.length} nodes off the WebGPU provider: ${list(offDevice)}`);
        assert.deepEqual(copies, [], `${c.id}: ${copies.length} copies between providers inside a run: ${list(copies)}`);
        const ops = new Map<string, number>();
        for (const p of shapeArithmetic) ops.set(p.op, (ops.get(p.op) ?? 0) + 1);
        st.diagnostic(`${c.id}: ${placed.counts.get(WEBGPU) ?? 0} nodes on WebGPU; int64 shape arithmetic on the CPU: ${[...ops].map(([op, n]) => `${n} ${op}`).join(", ") || "none"}`);
      });
    }
    await t.test("a session that refuses CPU fallback (the state graphs') refuses a float64 graph, which opens without it", () => {
      assert.equal(said.get("float64:lenient")?.opened, true, said.get("float64:lenient")?.error);
      const strict = said.get("float64:strict");
      assert.equal(strict?.opened, false);
      assert.match(strict?.error ?? "", /no kernel on the webgpu provider and would run on the CPU/);
    });
  });
}
