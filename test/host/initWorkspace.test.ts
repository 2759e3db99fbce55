// Initialize Workspace (issue 28): the data, then the model, as two questions; "Use a data set file…" asks about the
// model instead of picking a new one silently, and the test set is asked for or its split stated. Run in plain Node
// with a stand-in for the `vscode` module, as workerService.test.ts does: the questions' order and wording are in
// src/core (initQuestions.ts, tested there); this checks that the command asks them and writes what was answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import Module from "node:module";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configPath } from "../../src/core/selftrain/workspace";
import { tempDir } from "../helpers/paths";

interface Choice {
  id: string;
  label: string;
}
/** What the person answers: per question (by a word of its title) the id picked, and the files the dialogs return. */
let script: { picks: Array<[RegExp, string | null]>; files: string[] } = { picks: [], files: [] };
const asked: string[] = [];
const told: string[] = [];
const fakeVscode = {
  workspace: { isTrusted: true, getConfiguration: () => ({ inspect: () => undefined }) },
  Uri: { file: (fsPath: string) => ({ fsPath }) },
  commands: { executeCommand: () => Promise.resolve(undefined) },
  window: {
    showQuickPick: (items: Choice[], options: { title: string }) => {
      asked.push(options.title);
      const answer = script.picks.find(([title]) => title.test(options.title));
      assert.ok(answer, `no answer scripted for "${options.title}" (choices: ${items.map((i) => i.label).join(", ")})`);
      return Promise.resolve(items.find((i) => i.id === answer[1]));
    },
    showOpenDialog: (options: { title: string }) => {
      asked.push(`dialog: ${options.title}`);
      const file = script.files.shift();
      return Promise.resolve(file === undefined ? undefined : [{ fsPath: file }]);
    },
    showInformationMessage: (message: string) => {
      told.push(message);
      return Promise.resolve(undefined);
    },
    showWarningMessage: (message: string) => {
      told.push(message);
      return Promise.resolve(undefined);
    },
    showErrorMessage: (message: string) => {
      told.push(`error: ${message}`);
      return Promise.resolve(undefined);
    },
    showTextDocument: () => Promise.resolve(undefined),
  },
};
const loader = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
const load = loader._load;
loader._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  return request === "vscode" ? fakeVscode : load.call(this, request, parent, isMain);
};
// Loaded after the stand-in is in place (an import would be hoisted above it).
const { registerSetupCommands } = require("../../src/host/commands/setupCommands") as typeof import("../../src/host/commands/setupCommands");

const LINE = '{"question": "Mia has 3 apples and buys 4. How many?", "answer": "3+4 = <<3+4=7>>7\\n#### 7"}\n';

/** Runs Initialize Workspace on `ws` with the person's answers; returns the questions asked, in order. */
async function initialize(ws: string, answers: typeof script): Promise<string[]> {
  script = answers;
  asked.length = 0;
  told.length = 0;
  const commands = new Map<string, () => Promise<unknown>>();
  const host = {
    workspace: () => ({ fsPath: ws }),
    command: (id: string, fn: () => Promise<unknown>) => commands.set(id, fn),
    output: { info: () => undefined, warn: () => undefined, error: () => undefined, show: () => undefined },
    setInitialized: () => Promise.resolve(),
    tree: { refresh: () => undefined },
  };
  registerSetupCommands(host as never);
  await commands.get("selfTraining.initWorkspace")!();
  return [...asked];
}

function dataFolder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "train.jsonl"), LINE.repeat(40));
  writeFileSync(join(dir, "test.jsonl"), LINE.repeat(10));
  return dir;
}

test("Initialize: a data set file is followed by its test set and then the model question; a file outside the workspace is stored absolute", async (t) => {
  const ws = tempDir(t);
  const data = dataFolder(join(tempDir(t), "gsm8k"));
  const asked = await initialize(ws, { picks: [[/the data$/, "file"], [/the test set/, "beside"], [/the model/, "new"]], files: [join(data, "train.jsonl")] });
  assert.deepEqual(asked, [
    "Initialize Self-Training (1 of 2): the data",
    "dialog: Training data set (GSM8K-style JSONL)",
    "Initialize Self-Training (1 of 2): the test set",
    "Initialize Self-Training (2 of 2): the model",
  ]);
  const config = JSON.parse(readFileSync(configPath(ws), "utf8"));
  assert.equal(config.model.init, "new", "the person chose a new model");
  assert.equal(config.data.train, join(data, "train.jsonl"), "outside the workspace: absolute, not ../../…");
  assert.equal(config.data.test, join(data, "test.jsonl"));
  assert.match(told.at(-1)!, /Data: train\.jsonl, test: test\.jsonl; model: new, trained from scratch\.$/);
});

test("Initialize: a training file without a test file states the split it takes; inside the workspace the path is relative", async (t) => {
  const ws = tempDir(t);
  mkdirSync(join(ws, "data"));
  writeFileSync(join(ws, "data", "questions.jsonl"), LINE.repeat(400));
  const asked = await initialize(ws, { picks: [[/the data$/, "file"], [/the test set/, "split"], [/the model/, "new"]], files: [join(ws, "data", "questions.jsonl")] });
  assert.equal(asked.length, 4);
  const config = JSON.parse(readFileSync(configPath(ws), "utf8"));
  assert.equal(config.data.train, join("data", "questions.jsonl"));
  assert.equal(config.data.test, "");
  assert.match(told.at(-1)!, new RegExp(`test: ${config.data.testSize} questions taken at random \\(by seed\\) from questions\\.jsonl \\(data\\.testSize\\)`));
});

test("Initialize: the synthetic task asks the model too, and Escape on the model question writes nothing", async (t) => {
  const ws = tempDir(t);
  const asked = await initialize(ws, { picks: [[/the data$/, "synthetic"], [/the model/, null]], files: [] });
  assert.deepEqual(asked, ["Initialize Self-Training (1 of 2): the data", "Initialize Self-Training (2 of 2): the model"]);
  assert.ok(!existsSync(join(ws, ".selftrain")) && !existsSync(join(ws, "data")), "a cancelled Initialize wrote files");
});
