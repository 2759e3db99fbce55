/**
 * How the worker process ended, and what the person should do next: the one classification that the CLI
 * (after `round`, `warmup`, `eval`) and the extension host (its notification) both say. Pure: the worker's exit
 * code and signal in, words out; compiled for Node and the browser alike, so it imports nothing.
 *
 * - Stopped from outside (SIGKILL: the kernel's out-of-memory killer or a kill by hand; SIGTERM, SIGINT, SIGHUP):
 *   the same command resumes the run where it stopped (after an out-of-memory kill, once the memory is lowered).
 * - A crash of its own (an abort or fault in native code, a non-zero exit): it comes from what the worker ran and
 *   would come again, so the advice says what to look at rather than inviting the same command. (Settings, model
 *   folders, chat templates and weights are checked before a run starts: their errors name the file and the key
 *   and end the command without a worker crash.)
 */

/** The end of the worker process: its exit code, the signal that ended it, and the last lines it wrote to stderr. */
export interface WorkerEnd {
  readonly code: number | null;
  readonly signal: string | null;
  /** The last lines the process wrote to stderr (a native crash's own message, such as ONNX Runtime's). */
  readonly stderrTail?: string;
}

/** "killed" and "stopped" resume with the same command; "crashed" would crash again on the same input. */
export type WorkerEndKind = "killed" | "stopped" | "crashed";

const STOPPED_FROM_OUTSIDE: ReadonlySet<string> = new Set(["SIGTERM", "SIGINT", "SIGHUP"]);

export function workerEndKind(end: WorkerEnd): WorkerEndKind {
  if (end.signal === "SIGKILL") return "killed";
  if (end.signal !== null && STOPPED_FROM_OUTSIDE.has(end.signal)) return "stopped";
  return "crashed";
}

/** Whether running the same command again resumes the run (a kill from outside), rather than crashing again. */
export function workerEndResumable(end: WorkerEnd): boolean {
  return workerEndKind(end) !== "crashed";
}

/** "was stopped by SIGABRT", "exited with code 134": how the process ended, for a log line or a notification. */
export function workerEndHow(end: WorkerEnd): string {
  return end.signal ? `was stopped by ${end.signal}` : `exited with code ${end.code}`;
}

/**
 * What to do after the worker died (one or two sentences, starting lower-case after "the worker process …"'s
 * caller prefix): a kill resumes with the same command; a crash of its own names its last output and the settings
 * to look at, and does not say the command resumes.
 */
export function workerExitAdvice(end: WorkerEnd): string {
  const lines = (end.stderrTail ?? "").split("\n").map((l) => l.trim()).filter((l) => l);
  const lastWords = lines.length > 0 ? ` Its last output: ${lines.slice(-3).join(" / ")}.` : "";
  switch (workerEndKind(end)) {
    case "killed":
      return "the worker process was killed (by the system when memory ran out, or by hand). Finished stages are kept; run the same command again to resume, " +
        "after lowering sampling.batchSize or the micro-batch sizes in .selftrain/config.json if memory ran out (selftrain model inspect estimates the peak).";
    case "stopped":
      return "the worker process was stopped from outside. Finished stages are kept; run the same command again to resume.";
    case "crashed":
      return `the worker process crashed.${lastWords} Finished stages are kept, but the same settings would crash it again: ` +
        "check the engine settings in .selftrain/config.json (engine.name, engine.executionProvider, engine.threads; engine.name \"tfjs\" avoids ONNX Runtime) before running the command again.";
  }
}

/** The extension host's notification after the worker died: how it ended, then the same advice as the CLI. */
export function workerExitNotice(end: WorkerEnd): string {
  return `The Self-Training worker process ${workerEndHow(end)}. The editor is fine; ${workerExitAdvice(end)}`;
}
