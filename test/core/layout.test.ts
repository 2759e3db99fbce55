import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { repoRoot } from "../helpers/paths";

// The compute code's layering, read from the import statements of src/core: one folder per concern, no folder
// cycle (a cycle means two folders are one concern, or one of them holds what belongs lower down), and an
// engine-neutral model description.

const core = join(repoRoot, "src", "core");
const IMPORT = /(?:^|\n)\s*(?:import|export)[^"';]*?from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2]!);
}

/** folder (relative to src/core) → the folders of src/core it imports from. */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const f of files(core)) {
    const from = relative(core, dirname(f)) || ".";
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const spec of imports(f).filter((s) => s.startsWith("."))) {
      const to = relative(core, dirname(resolve(dirname(f), spec))) || ".";
      if (to !== from && !to.startsWith("..")) edges.add(to);
    }
  }
  return graph;
}

/** The cycles a depth-first walk of a graph meets, each as its nodes in order (the first again at the end). */
function cycles<N>(graph: ReadonlyMap<N, Iterable<N>>): N[][] {
  const state = new Map<N, "open" | "done">();
  const path: N[] = [];
  const found: N[][] = [];
  const visit = (n: N): void => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "open") {
      found.push([...path.slice(path.indexOf(n)), n]);
      return;
    }
    state.set(n, "open");
    path.push(n);
    for (const m of graph.get(n) ?? []) visit(m);
    path.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) visit(n);
  return found;
}

test("src/core has no folder cycle", () => {
  const graph = folderGraph();
  assert.deepEqual(cycles(graph).map((c) => `folder cycle: ${c.join(" → ")}`), []);
  assert.ok(graph.has("engine/tf") && graph.has("engine/ort/runtime"), "each engine has its folder");
});

test("the model description is engine-neutral: src/core/model imports neither TensorFlow.js, ONNX Runtime nor an engine", () => {
  for (const f of files(join(core, "model"))) {
    for (const spec of imports(f)) {
      assert.ok(!/@tensorflow|onnxruntime|protobufjs|\/engine\//.test(spec), `${relative(repoRoot, f)} imports ${spec}`);
    }
  }
});

test("the engines compute; training drives them: no file under src/core/engine imports src/core/train", () => {
  for (const f of files(join(core, "engine"))) {
    for (const spec of imports(f).filter((s) => s.startsWith("."))) {
      const to = relative(core, resolve(dirname(f), spec));
      assert.ok(!to.startsWith("train"), `${relative(core, f)} imports ${spec} (${to}): a loss or helper both need belongs under engine/ (as engine/dpoLoss.ts)`);
    }
  }
});

test("the ONNX engine's three rooms: the graph compiler (ort/onnx) knows no model and no runtime; the Llama graphs (ort/llama) know no runtime", () => {
  const ort = join(core, "engine", "ort");
  const loose = readdirSync(ort).filter((n) => n.endsWith(".ts"));
  assert.deepEqual(loose, [], `files outside the rooms onnx/, llama/, runtime/: ${loose.join(", ")}`);
  const forbidden: Record<string, string[]> = { onnx: ["llama", "runtime"], llama: ["runtime"] };
  for (const [room, not] of Object.entries(forbidden)) {
    for (const f of files(join(ort, room))) {
      for (const spec of imports(f).filter((s) => s.startsWith("."))) {
        const to = relative(ort, resolve(dirname(f), spec));
        for (const other of not) assert.ok(!to.startsWith(other + "/") && to !== other, `ort/${room}/${relative(join(ort, room), f)} imports ${spec}: ort/${room} must not know ort/${other}`);
      }
    }
  }
  // The compiler stays a compiler: no onnxruntime, no model description either.
  for (const f of files(join(ort, "onnx"))) {
    for (const spec of imports(f)) {
      assert.ok(!spec.includes("onnxruntime") && !relative(core, resolve(dirname(f), spec)).startsWith("model"), `${relative(core, f)} imports ${spec}`);
    }
  }
});

test("the selftrain layer reaches an engine through its interface or engine/modelExport.ts, never into an engine's folder", () => {
  for (const f of files(join(core, "selftrain"))) {
    for (const spec of imports(f).filter((s) => s.startsWith("."))) {
      const to = relative(core, resolve(dirname(f), spec));
      assert.ok(!/^engine\/(ort|tf)\//.test(to), `${relative(core, f)} imports ${spec}`);
    }
  }
});

test("no two files of src/core import each other, directly or round about (architecture.ts ↔ config.ts was one)", () => {
  const graph = new Map<string, string[]>();
  for (const f of files(core)) {
    graph.set(f, imports(f).filter((s) => s.startsWith(".")).map((s) => resolve(dirname(f), s)).map((p) => (p.endsWith(".ts") ? p : `${p}.ts`)).filter((p) => p.startsWith(core)));
  }
  assert.deepEqual(cycles(graph).map((c) => c.map((x) => relative(core, x)).join(" → ")), []);
});
