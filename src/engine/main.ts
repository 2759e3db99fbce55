/**
 * The engine process: forked by the extension host (or started by the CLI), it takes typed commands over
 * IPC and streams typed events back. Heavy work lives here so that the editor never blocks and a crash in
 * native code cannot take the editor down.
 */
import { commandProblem, type EngineCommand, type EngineEvent } from "../shared/engineProtocol";
import { inspectDataset } from "../core/data/datasetReport";

function send(event: EngineEvent): void {
  if (process.send) process.send(event);
  else process.stdout.write(JSON.stringify(event) + "\n");
}

async function handle(cmd: EngineCommand): Promise<void> {
  switch (cmd.type) {
    case "checkDataset": {
      try {
        const report = await inspectDataset(cmd.file, {
          onProgress: (n) => send({ type: "progress", id: cmd.id, stage: "reading", done: n, total: null }),
        });
        send({ type: "datasetReport", id: cmd.id, report });
        send({ type: "finished", id: cmd.id });
      } catch (e) {
        send({ type: "failed", id: cmd.id, message: e instanceof Error ? e.message : String(e) });
      }
      return;
    }
    case "cancel":
      // Nothing long-running is cancellable yet; a round (later) checks its cancel flag between steps.
      return;
    case "shutdown":
      process.exit(0);
  }
}

process.on("message", (msg: unknown) => {
  const problem = commandProblem(msg);
  if (problem !== null) {
    send({ type: "log", id: null, level: "error", message: `rejected command: ${problem}` });
    return;
  }
  void handle(msg as EngineCommand);
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready", pid: process.pid });
