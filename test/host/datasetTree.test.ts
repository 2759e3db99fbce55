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
  assert.deepEqual((await rows(ws)).kinds, ["data", "model", "run"]);
  assert.deepEqual((await rows(tempDir(t))).kinds, []);
});
