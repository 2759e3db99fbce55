// The Dataset Explorer on a config.json with mistakes (issue 28): it shows each problem in place, as a row that
// opens the file at the setting, and keeps the rows that do not need the settings it got wrong, instead of going
// blank. Run in plain Node with a stand-in for the `vscode` module, as workerService.test.ts does: the rows' logic
// is in src/core (configProblems.ts, tested there); this checks the tree provider's use of it.
import { test } from "node:test";
import assert from "node:assert/strict";
import Module from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../src/core/selftrain/config";
import { configPath, selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { tempDir } from "../helpers/paths";

class EventEmitter {
  event = (): { dispose: () => void } => ({ dispose: () => undefined });
  fire(): void {}
  dispose(): void {}
}
class TreeItem {
  description?: string;
  tooltip?: unknown;
  iconPath?: unknown;
  command?: { command: string; title: string; arguments?: unknown[] };
  contextValue?: string;
  resourceUri?: unknown;
  constructor(
    readonly label: string,
    readonly collapsibleState: number,
  ) {}
}
class MarkdownString {
  value = "";
  appendText(t: string): this {
    this.value += t;
    return this;
  }
  appendMarkdown(t: string): this {
    this.value += t;
    return this;
  }
  appendCodeblock(t: string): this {
    this.value += t;
    return this;
  }
}
const fakeVscode = {
  EventEmitter,
  TreeItem,
  MarkdownString,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  ThemeIcon: class {
    constructor(
      readonly id: string,
      readonly color?: unknown,
    ) {}
  },
  ThemeColor: class {
    constructor(readonly id: string) {}
  },
  Uri: { file: (fsPath: string) => ({ fsPath }) },
};
const loader = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
const load = loader._load;
loader._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  return request === "vscode" ? fakeVscode : load.call(this, request, parent, isMain);
};
// Loaded after the stand-in is in place (an import would be hoisted above it).
const { DatasetTreeProvider } = require("../../src/host/datasetTree") as typeof import("../../src/host/datasetTree");

/** A workspace with a data file, one run, and config.json as `text` (the defaults, two-space JSON, when edited by `edit`). */
async function workspace(t: Parameters<typeof tempDir>[0], text: string): Promise<string> {
  const ws = tempDir(t);
  mkdirSync(join(ws, "data"), { recursive: true });
  writeFileSync(join(ws, "data/train.jsonl"), '{"question": "1+1?", "answer": "<<1+1=2>>2\\n#### 2"}\n');
  mkdirSync(selftrainDir(ws), { recursive: true });
  writeFileSync(configPath(ws), text);
  await RunStore.create(selftrainDir(ws), { mode: "dpo-st" });
  return ws;
}

function edited(edit: (c: Record<string, Record<string, unknown>>) => void): string {
  const c = JSON.parse(JSON.stringify(defaultConfig())) as Record<string, Record<string, unknown>>;
  edit(c);
  return JSON.stringify(c, null, 2) + "\n";
}

async function rows(ws: string): Promise<{ kinds: string[]; items: TreeItem[] }> {
  const tree = new DatasetTreeProvider(() => ({ fsPath: ws }) as never, () => false);
  try {
    const nodes = await tree.getChildren();
    return { kinds: nodes.map((n) => n.kind), items: (await Promise.all(nodes.map((n) => tree.getTreeItem(n)))) as unknown as TreeItem[] };
  } finally {
    tree.dispose();
  }
}

test("issue 28's typo: a row that says it, opening config.json at the key, above Data, Model and the runs", async (t) => {
  const text = edited((c) => {
    delete c["sampling"]!["maxNewTokens"];
    c["sampling"]!["maxNewToken"] = 120;
  });
  const ws = await workspace(t, text);
  const { kinds, items } = await rows(ws);
  assert.deepEqual(kinds, ["configProblem", "data", "model", "run"]);
  const problem = items[0]!;
  assert.equal(problem.label, "config.json: sampling.maxNewToken is not a setting; did you mean maxNewTokens?");
  assert.equal(problem.command?.command, "selfTraining.openConfig");
  const place = problem.command?.arguments?.[0] as { line: number; character: number; length: number };
  assert.equal(text.split("\n")[place.line]!.slice(place.character, place.character + place.length), "maxNewToken");
  assert.equal((problem.iconPath as { id: string }).id, "error");
  assert.match((problem.tooltip as MarkdownString).value, new RegExp(`^${configPath(ws).replace(/[.\\]/g, "\\$&")}:${place.line + 1}:${place.character + 1}\\n`));
  assert.equal(items[1]!.label, "Data");
  assert.match(items[2]!.description ?? "", /^new llama · /);
});

test("a mistake in the data settings hides the Data row only; each mistake has its row", async (t) => {
  const ws = await workspace(t, edited((c) => {
    c["data"]!["devSize"] = -1;
    c["dpo"]!["betta"] = 0.2;
  }));
  const { kinds, items } = await rows(ws);
  assert.deepEqual(kinds, ["configProblem", "configProblem", "model", "run"]);
  assert.deepEqual(items.slice(0, 2).map((i) => i.label), ["config.json: data.devSize must not be negative, not -1", "config.json: dpo.betta is not a setting; did you mean beta?"]);
});

test("a config.json that is not JSON: its row, at the break, and the runs", async (t) => {
  const ws = await workspace(t, '{\n  "mode": "st",\n  "seed": 1,,\n}\n');
  const { kinds, items } = await rows(ws);
  assert.deepEqual(kinds, ["configProblem", "run"]);
  assert.match(items[0]!.label, /^config\.json: not valid JSON \(/);
  assert.deepEqual(items[0]!.command?.arguments, [{ line: 2, character: 12, length: 0 }]);
});

test("a good config.json has no problem row; no config.json leaves the tree to the welcome view", async (t) => {
  const ws = await workspace(t, edited(() => undefined));
  assert.deepEqual((await rows(ws)).kinds, ["data", "model", "next", "run"]);
  assert.deepEqual((await rows(tempDir(t))).kinds, []);
});

test("the rows agree with the files: data the round uses, rounds finished, a next step, pair sources and next-round badges", async (t) => {
  const ws = await workspace(t, edited((c) => {
    c["data"]!["maxTrainQuestions"] = 40;
    c["data"]!["test"] = "";
    c["data"]!["devSize"] = 10;
    c["data"]!["testSize"] = 10;
  }));
  writeFileSync(join(ws, "data/train.jsonl"), Array.from({ length: 100 }, (_, i) => JSON.stringify({ question: `${i}+1?`, answer: `#### ${i + 1}` })).join("\n") + "\n");
  const store = await RunStore.open(selftrainDir(ws), RunStore.list(selftrainDir(ws))[0]!);
  for (const s of ["warmup", "eval"] as const) await store.setStage(0, s, { state: "done" });
  for (const s of ["sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"] as const) await store.setStage(1, s, { state: "done" });
  // One question, both samples wrong: its two pairs are gold ≻ sample. A person then marks sample 1 right.
  mkdirSync(store.roundDir(1), { recursive: true });
  const smp = (i: number) => ({ hash: `h${i}`, questionId: "q1", question: "1+1?", rationale: `#### ${i + 3}`, answer: i + 3, gold: 2, correct: false, logProb: -1, calculatorCalls: [], arithmeticErrors: 0, finished: true, round: 1, index: i });
  writeFileSync(store.path(1, "samples-dpo.jsonl"), [smp(0), smp(1)].map((s) => JSON.stringify(s)).join("\n") + "\n");
  const pair = (h: string) => ({ questionId: "q1", question: "1+1?", chosenHash: "gold", rejectedHash: h, chosen: "#### 2", rejected: "", similarity: 0, source: "automatic", round: 1 });
  writeFileSync(store.path(1, "pairs.jsonl"), [pair("h0"), pair("h1")].map((p) => JSON.stringify(p)).join("\n") + "\n");
  writeFileSync(join(selftrainDir(ws), "reviews.jsonl"), JSON.stringify({ id: "r1", at: "2026-11-25T00:00:00Z", kind: "mark", verdict: "correct", hash: "h0" }) + "\n");

  const tree = new DatasetTreeProvider(() => ({ fsPath: ws }) as never, () => false);
  t.after(() => tree.dispose());
  const top = await tree.getChildren();
  assert.deepEqual(top.map((n) => n.kind), ["data", "model", "next", "run"]);
  const item = async (n: (typeof top)[number]) => (await tree.getTreeItem(n)) as unknown as TreeItem;
  const data = await item(top[0]!);
  assert.equal(data.description, "40 train · 10 dev · 10 test");
  assert.match((data.tooltip as MarkdownString).value, /a round uses 40 of the 80 train questions/);
  const run = await item(top[3]!);
  assert.equal(run.description, "1 round done");
  const next = await item(top[2]!);
  assert.equal(next.label, "Next: ▶ Start round 2");
  assert.equal(next.command?.command, "selfTraining.startRound");
  // The round's groups: sample 1 marked right makes the question mixed; both pairs come from it, gold ≻ sample.
  const [, round] = await tree.getChildren(top[3]); // round 0 (the warm-up), round 1
  const groups = await tree.getChildren(round);
  const mixed = await item(groups[0]!);
  assert.deepEqual([mixed.label, mixed.description], ["Mixed (1)", "2 pairs"]);
  assert.match((mixed.tooltip as MarkdownString).value, /2 of the round's pairs come from these questions: 2 gold ≻ sample .*, 0 sample ≻ sample\./);
  assert.equal((await item(groups[1]!)).description, undefined, "All wrong (0) has no pairs");
  const [question] = await tree.getChildren(groups[0]);
  const samples = await Promise.all((await tree.getChildren(question)).map(item));
  assert.equal(samples[0]!.description, "#### 3 · positive next round · you: correct", "marked right: no 'rejected' badge");
  assert.match((samples[0]!.tooltip as MarkdownString).value, /next round not: you marked its rejected side, sample 1, right/);
  assert.equal(samples[1]!.description, "#### 4 · rejected");
});
