/**
 * The worker process: forked by the extension host (or started by the CLI), it takes typed commands over
 * IPC and streams typed events back. Heavy work lives here so that the editor never blocks and a crash in
 * native code cannot take the editor down.
 */
import { commandProblem, MAX_ID, type WorkerCommand, type WorkerEvent } from "../shared/workerProtocol";
import { shown } from "../shared/messageGuards";
import { inspectDataset } from "../core/data/datasetReport";
import { runRound, evaluateRound } from "../core/selftrain/session";
import { workspaceStatus } from "../core/selftrain/workspace";
import { CancelledError } from "../core/util/cancel";
import { roundResult } from "../core/selftrain/roundResult";
import type { RunnerEvents } from "../core/selftrain/runEvents";

function send(event: WorkerEvent): void {
  if (process.send) process.send(event);
  else process.stdout.write(JSON.stringify(event) + "\n");
}

const cancelled = new Set<string>();
/** One run at a time: two rounds writing the same run store would corrupt it. */
let busy: string | null = null;

function events(id: string): RunnerEvents {
  return {
    stage: (e) => send({ type: "stage", id, ...e }),
    progress: (e) => send({ type: "progress", id, round: e.round, stage: e.stage, done: e.done, total: e.total, etaMs: e.etaMs, ...(e.unit ? { unit: e.unit } : {}) }),
    metric: (record) => send({ type: "metric", id, record }),
    log: (e) => send({ type: "log", id, level: e.level, message: e.message }),
  };
}

async function handle(cmd: WorkerCommand): Promise<void> {
  switch (cmd.type) {
    case "checkDataset": {
      const report = await inspectDataset(cmd.file, {
        onProgress: (n) => send({ type: "progress", id: cmd.id, stage: "reading", done: n, total: null }),
      });
      send({ type: "datasetReport", id: cmd.id, report });
      return;
    }
    case "runRound": {
      if (busy) throw new Error(`a round is already running (job ${busy}); stop it first`);
      busy = cmd.id;
      try {
        const r = await runRound({ workspace: cmd.workspace, runId: cmd.runId, round: cmd.round, newRun: cmd.newRun, mode: cmd.mode, restartFrom: cmd.restartFrom, events: events(cmd.id), shouldStop: () => cancelled.has(cmd.id) });
        send({ type: "roundFinished", id: cmd.id, runId: r.runId, round: r.round, peakRssBytes: process.resourceUsage().maxRSS * 1024, result: await roundResult(cmd.workspace, r.runId, r.round) });
      } finally {
        busy = null;
      }
      return;
    }
    case "evaluate": {
      if (busy) throw new Error(`a round is already running (job ${busy}); stop it first`);
      busy = cmd.id;
      try {
        const r = await evaluateRound({ workspace: cmd.workspace, runId: cmd.runId, round: cmd.round, events: events(cmd.id), shouldStop: () => cancelled.has(cmd.id) });
        send({ type: "roundFinished", id: cmd.id, runId: r.runId, round: r.round, peakRssBytes: process.resourceUsage().maxRSS * 1024, result: await roundResult(cmd.workspace, r.runId, r.round) });
      } finally {
        busy = null;
      }
      return;
    }
    case "status":
      send({ type: "runStatus", id: cmd.id, runs: await workspaceStatus(cmd.workspace) });
      return;
    case "cancel":
      // A cancel names the job it stops; one for no running job is said, not silently kept for later.
      if (cmd.id !== busy) {
        send({ type: "log", id: null, level: "warn", message: `cancel: no job ${shown(cmd.id)} is running (running: ${busy === null ? "none" : shown(busy)})` });
        return;
      }
      cancelled.add(cmd.id);
      return;
    case "shutdown":
      process.exit(0);
  }
}

process.on("message", (msg: unknown) => {
  const problem = commandProblem(msg);
  if (problem !== null) {
    // A driver waiting on this id hears that it failed, rather than waiting for ever; without a usable id the
    // reason goes to the log. Said once, either way.
    const id = typeof msg === "object" && msg !== null ? (msg as { id?: unknown }).id : undefined;
    if (typeof id === "string" && id.length > 0 && id.length <= MAX_ID) send({ type: "failed", id, message: `invalid command: ${problem}` });
    else send({ type: "log", id: null, level: "error", message: `rejected command: ${problem}` });
    return;
  }
  const cmd = msg as WorkerCommand;
  if (cmd.type === "cancel" || cmd.type === "shutdown") {
    void handle(cmd);
    return;
  }
  handle(cmd).then(
    () => send({ type: "finished", id: cmd.id }),
    (e: unknown) => {
      if (e instanceof CancelledError) send({ type: "cancelled", id: cmd.id });
      else send({ type: "failed", id: cmd.id, message: e instanceof Error ? e.message : String(e) });
    },
  );
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready", pid: process.pid });
