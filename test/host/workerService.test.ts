// The extension host's WorkerService, run in plain Node with a stand-in for the `vscode` module: after the worker
// dies it tells the user what the CLI tells (src/shared/workerExit.ts): a kill resumes with the same command, a
// crash of its own would come again, so it names what to fix and does not promise that the next command resumes.
import { test } from "node:test";
import assert from "node:assert/strict";
import Module from "node:module";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { workerExitAdvice, workerExitNotice } from "../../src/shared/workerExit";
import { tempDir } from "../helpers/paths";

/** What the host showed and logged, through the stand-in `vscode` module. */
const shown: string[] = [];
const logged: string[] = [];
const fakeVscode = {
  window: {
    showErrorMessage: (message: string) => {
      shown.push(message);
      return Promise.resolve(undefined);
    },
  },
};
const loader = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
const load = loader._load;
loader._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  return request === "vscode" ? fakeVscode : load.call(this, request, parent, isMain);
};
// Loaded after the stand-in is in place (an import would be hoisted above it).
const { WorkerService } = require("../../src/host/workerService") as typeof import("../../src/host/workerService");

const output = {
  error: (m: string) => logged.push(`error: ${m}`),
  info: (m: string) => logged.push(`info: ${m}`),
  warn: (m: string) => logged.push(`warn: ${m}`),
  show: () => undefined,
};

/** A worker that says it is ready, writes `stderr`, then ends as `end` says (an exit code, or a signal to itself). */
function fakeWorker(dir: string, name: string, stderr: string, end: string): string {
  const file = join(dir, `${name}.js`);
  writeFileSync(file, `process.send({ type: "ready", pid: process.pid });\nprocess.stderr.write(${JSON.stringify(stderr)});\nsetTimeout(() => { ${end} }, 100);\n`);
  return file;
}

/** Starts the service on `script`, waits for the notification that follows the worker's end, and returns it. */
async function noticeAfter(script: string): Promise<string> {
  shown.length = 0;
  const service = new WorkerService(script, output as never);
  try {
    await service.get();
    for (let i = 0; i < 200 && shown.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(shown.length, 1, `notifications: ${JSON.stringify(shown)}`);
    return shown[0]!;
  } finally {
    service.dispose();
  }
}

const NATIVE_ABORT = "warming up\nterminate called after throwing an instance of 'Ort::Exception'\n  what():  bad allocation\n";

test("a worker that crashes of its own: the host says what to fix, with its last output, and not that the next command resumes", async (t) => {
  const dir = tempDir(t);
  const notice = await noticeAfter(fakeWorker(dir, "crash", NATIVE_ABORT, "process.exit(134);"));
  assert.doesNotMatch(notice, /resume/);
  assert.match(notice, /^The Self-Training worker process exited with code 134\. The editor is fine; the worker process crashed\. Its last output: warming up \/ terminate called after throwing an instance of 'Ort::Exception' \/ what\(\): {2}bad allocation\. Finished stages are kept, but the same settings would crash it again: check the engine settings in \.selftrain\/config\.json/);
  // The same words the CLI prints after `error: worker process stopped (...)`: one classification, not two.
  assert.equal(notice, workerExitNotice({ code: 134, signal: null, stderrTail: NATIVE_ABORT.trim() }));
  assert.ok(notice.endsWith(workerExitAdvice({ code: 134, signal: null, stderrTail: NATIVE_ABORT.trim() })));
  assert.ok(logged.some((l) => l.startsWith("error: worker process exited with code 134; its last output:\nwarming up")), logged.join("\n"));
});

test("a worker killed from outside (SIGKILL, as the out-of-memory killer does): the host says the same command resumes", { skip: process.platform === "win32" ? "signals" : false }, async (t) => {
  const dir = tempDir(t);
  const notice = await noticeAfter(fakeWorker(dir, "killed", "", 'process.kill(process.pid, "SIGKILL");'));
  assert.match(notice, /^The Self-Training worker process was stopped by SIGKILL\. The editor is fine; the worker process was killed \(by the system when memory ran out, or by hand\)\. Finished stages are kept; run the same command again to resume/);
  assert.equal(notice, workerExitNotice({ code: null, signal: "SIGKILL" }));
});

test("a worker that ends cleanly (code 0), or is disposed with the editor, is not reported", async (t) => {
  const dir = tempDir(t);
  shown.length = 0;
  const clean = new WorkerService(fakeWorker(dir, "clean", "", "process.exit(0);"), output as never);
  await clean.get();
  await new Promise((r) => setTimeout(r, 1500));
  clean.dispose();
  const disposed = new WorkerService(fakeWorker(dir, "long", "", "setTimeout(() => {}, 60000);"), output as never);
  await disposed.get();
  disposed.dispose(); // SIGTERM from the host itself
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(shown, []);
});
