import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { WorkerClient } from "../../src/worker/client";
import { commandProblem } from "../../src/shared/workerProtocol";
import type { WorkerEvent } from "../../src/shared/workerProtocol";
import { repoRoot, tempDir } from "../helpers/paths";

const workerJs = join(repoRoot, "dist", "worker.js");

test("the worker process checks a data set over IPC and reports bad lines with line numbers", { skip: existsSync(workerJs) ? false : "dist/worker.js not built (npm run build)" }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "d.jsonl");
  writeFileSync(file, [JSON.stringify({ question: "q", answer: "3*4 = <<3*4=13>>13\n#### 13" }), "{broken"].join("\n"));
  const engine = new WorkerClient(workerJs);
  t.after(() => engine.dispose());
  await engine.start();
  const logs: WorkerEvent[] = [];
  engine.onEvent((e) => e.type === "log" && logs.push(e));
  const events = await engine.run({ type: "checkDataset", id: "a", file });
  const report = events.find((e) => e.type === "datasetReport");
  assert.ok(report && report.type === "datasetReport");
  assert.equal(report.report.examples, 1);
  assert.deepEqual(report.report.errors.map((e) => e.line), [2]);
  assert.deepEqual(report.report.wrongArithmetic, [{ id: "d:1", annotation: "<<3*4=13>>", expected: "12" }]);

  await assert.rejects(engine.run({ type: "checkDataset", id: "b", file: join(dir, "missing.jsonl") }), /missing\.jsonl: no such file/);

  // A malformed command is rejected with a logged reason, and the engine keeps serving.
  engine.send({ type: "checkDataset", id: 5 } as never);
  await new Promise((r) => setTimeout(r, 200));
  assert.match(JSON.stringify(logs), /rejected command: checkDataset: id must be a non-empty string/);
  const again = await engine.run({ type: "checkDataset", id: "c", file });
  assert.equal(again.at(-1)?.type, "finished");
});

test("command guards name what is wrong", () => {
  assert.equal(commandProblem({ type: "checkDataset", id: "x", file: "f" }), null);
  assert.equal(commandProblem({ type: "shutdown" }), null);
  assert.match(commandProblem({ type: "checkDataset", id: "x" })!, /file must be a non-empty string/);
  assert.match(commandProblem({ type: "rm -rf" })!, /unknown command type "rm -rf"/);
  assert.match(commandProblem(null)!, /not an object/);
  assert.match(commandProblem([1])!, /not an object/);
});

test("command guards: rounds are whole numbers in range, long values are refused without being echoed", () => {
  const base = { type: "runRound", id: "r", workspace: "/ws" };
  assert.equal(commandProblem({ ...base, round: 3 }), null);
  for (const round of [2.5, 1e308, -3, Number.NaN]) {
    assert.match(commandProblem({ ...base, round })!, /runRound: round must be a whole number from 0 to 10000/, String(round));
    assert.match(commandProblem({ type: "evaluate", id: "e", workspace: "/ws", round })!, /evaluate: round must be a whole number from 0 to 10000/, String(round));
  }
  const huge = "x".repeat(20_000_000);
  for (const msg of [{ ...base, runId: huge }, { ...base, workspace: huge }, { type: huge, id: "a" }, { ...base, round: huge }]) {
    const problem = commandProblem(msg)!;
    assert.ok(problem.length < 200, `a ${problem.length}-character refusal`);
  }
});

test("the engine answers a malformed command once, and a cancel for no running job says so", { skip: existsSync(workerJs) ? false : "dist/worker.js not built (npm run build)" }, async (t) => {
  const engine = new WorkerClient(workerJs);
  t.after(() => engine.dispose());
  await engine.start();
  const seen: WorkerEvent[] = [];
  engine.onEvent((e) => seen.push(e));
  await assert.rejects(engine.run({ type: "evaluate", id: "bad", workspace: "/ws", round: 2.5 }), /invalid command: evaluate: round must be a whole number/);
  engine.send({ type: "cancel", id: "no-such-job" });
  await new Promise((r) => setTimeout(r, 200));
  const said = seen.filter((e) => JSON.stringify(e).includes("round must be"));
  assert.equal(said.length, 1, `the refusal was sent ${said.length} times`);
  assert.ok(seen.some((e) => e.type === "log" && e.level === "warn" && /cancel: no job "no-such-job" is running/.test(e.message)));
});
