// Initialize Workspace's questions (issue 28): the data, then the model, every answer asked for; the test set is
// asked for (a file beside the training file offered first) or the split it takes from the training file stated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { askInitialize, DATA_TITLE, MODEL_TITLE, TEST_TITLE, splitStatement, testFileBeside, type InitAsker, type InitChoice } from "../../../src/core/selftrain/initQuestions";
import { tempDir } from "../../helpers/paths";

/** An asker that answers from a script and records what it was asked. */
function scripted(picks: Record<string, string | null>, files: string[], folder: string | null = null): { ask: InitAsker; asked: string[]; offered: Map<string, InitChoice[]> } {
  const asked: string[] = [];
  const offered = new Map<string, InitChoice[]>();
  return {
    asked,
    offered,
    ask: {
      pick: async (title, choices) => {
        asked.push(title);
        offered.set(title, choices);
        assert.ok(title in picks, `unexpected question: ${title}`);
        return picks[title]!;
      },
      file: async (title) => {
        asked.push(title);
        return files.shift() ?? null;
      },
      modelFolder: async (data) => {
        // The model check is told the data already chosen, so it can say how long a round on it takes.
        asked.push(`model folder for ${data.kind === "file" ? `${data.train} + ${data.test || "split"}` : "synthetic"}`);
        return folder;
      },
    },
  };
}

const split = { devSize: 100, testSize: 200 };

test("a data set file: its test set, then the model; a new model only when the person picks it", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "gsm8k-train.jsonl"), "");
  writeFileSync(join(dir, "gsm8k-test.jsonl"), "");
  const s = scripted({ [DATA_TITLE]: "file", [TEST_TITLE]: "beside", [MODEL_TITLE]: "folder" }, [join(dir, "gsm8k-train.jsonl")], "models/qwen3");
  const a = await askInitialize(s.ask, split);
  assert.deepEqual(s.asked, [DATA_TITLE, "Training data set (GSM8K-style JSONL)", TEST_TITLE, MODEL_TITLE, `model folder for ${join(dir, "gsm8k-train.jsonl")} + ${join(dir, "gsm8k-test.jsonl")}`]);
  assert.deepEqual(a, { data: { kind: "file", train: join(dir, "gsm8k-train.jsonl"), test: join(dir, "gsm8k-test.jsonl") }, model: "models/qwen3", testSet: "test: gsm8k-test.jsonl" });
  assert.deepEqual(s.offered.get(TEST_TITLE)!.map((c) => c.id), ["beside", "file", "split"]);
  assert.deepEqual(s.offered.get(MODEL_TITLE)!.map((c) => c.id), ["new", "folder"]);
});

test("no test file: the split taken from the training file is offered and stated", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "questions.jsonl"), "");
  const s = scripted({ [DATA_TITLE]: "file", [TEST_TITLE]: "split", [MODEL_TITLE]: "new" }, [join(dir, "questions.jsonl")]);
  const a = await askInitialize(s.ask, split);
  assert.deepEqual(s.offered.get(TEST_TITLE)!.map((c) => c.id), ["file", "split"], "nothing beside it to offer");
  assert.equal(a?.model, "new");
  assert.deepEqual(a?.data, { kind: "file", train: join(dir, "questions.jsonl"), test: "" });
  assert.equal(a?.testSet, "test: 200 questions taken at random (by seed) from questions.jsonl (data.testSize), dev: up to 100 more (data.devSize)");
  assert.equal(a?.testSet, splitStatement(join(dir, "questions.jsonl"), split));
});

test("the synthetic task asks the model too; Escape at any question ends Initialize", async () => {
  const s = scripted({ [DATA_TITLE]: "synthetic", [MODEL_TITLE]: "new" }, []);
  assert.deepEqual(await askInitialize(s.ask, split), { data: { kind: "synthetic" }, model: "new", testSet: "test: the synthetic task's own 500 questions (test.jsonl)" });
  assert.deepEqual(s.asked, [DATA_TITLE, MODEL_TITLE]);
  assert.equal(await askInitialize(scripted({ [DATA_TITLE]: null }, []).ask, split), null);
  assert.equal(await askInitialize(scripted({ [DATA_TITLE]: "synthetic", [MODEL_TITLE]: null }, []).ask, split), null);
  assert.equal(await askInitialize(scripted({ [DATA_TITLE]: "synthetic", [MODEL_TITLE]: "folder" }, [], null).ask, split), null, "a model folder refused or cancelled");
  assert.equal(await askInitialize(scripted({ [DATA_TITLE]: "file" }, []).ask, split), null, "the file dialog cancelled");
});

test("testFileBeside: train → test in the name, else test.jsonl, never the training file itself", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "test.jsonl"), "");
  assert.equal(testFileBeside(join(dir, "test.jsonl")), null);
  assert.equal(testFileBeside(join(dir, "mine.jsonl")), join(dir, "test.jsonl"));
  writeFileSync(join(dir, "GSM-Train.jsonl"), "");
  writeFileSync(join(dir, "GSM-Test.jsonl"), "");
  assert.equal(testFileBeside(join(dir, "GSM-Train.jsonl")), join(dir, "GSM-Test.jsonl"));
});
