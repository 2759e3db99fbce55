import { fork, type ChildProcess } from "node:child_process";
import { isWorkerEvent, type WorkerCommand, type WorkerEvent } from "../shared/workerProtocol";
import { workerEndResumable, type WorkerEnd } from "../shared/workerExit";

/** The worker process ended while a job ran (a crash, a kill): reported once, by whoever watches its exit. */
export class WorkerExited extends Error implements WorkerEnd {
  constructor(
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    /** The last lines the process wrote to stderr (a native crash's own message, such as ONNX Runtime's). */
    readonly stderrTail = "",
  ) {
    super(`worker process stopped (code ${code}, signal ${signal})`);
    this.name = "WorkerExited";
  }

  /**
   * Whether it was stopped from outside rather than by what it ran (workerEndKind, shared with the extension host):
   * then the same command resumes the run; after a crash of its own the same input crashes it again.
   */
  get killed(): boolean {
    return workerEndResumable(this);
  }
}

/** Bytes of the worker's stderr kept for WorkerExited: a crash's message is its last lines. */
const STDERR_TAIL_BYTES = 4096;

/** The job was stopped at the user's request; its state resumes. */
export class CancelledByUser extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledByUser";
  }
}

/**
 * Starts the worker process and talks to it with the typed protocol. Used by the extension host and the CLI
 * alike; no vscode import, so it is tested with plain Node.
 */
export class WorkerClient {
  private child: ChildProcess | null = null;
  private readonly listeners = new Set<(e: WorkerEvent) => void>();
  private exitListeners = new Set<(code: number | null, signal: NodeJS.Signals | null, stderrTail: string) => void>();
  private stderrTail = "";

  constructor(private readonly workerScript: string) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = fork(this.workerScript, [], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
      this.child = child;
      // Read, or a process writing much to stderr would block once the pipe is full; the tail says why it crashed.
      this.stderrTail = "";
      child.stdout?.resume(); // unused (events go over IPC), but drained so that "close" comes
      child.stderr?.setEncoding("utf8").on("data", (text: string) => {
        this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
      });
      let ready = false;
      child.on("message", (msg: unknown) => {
        if (!isWorkerEvent(msg)) return;
        if (msg.type === "ready" && !ready) {
          ready = true;
          resolve();
        }
        for (const l of this.listeners) l(msg);
      });
      child.once("error", (e) => (ready ? undefined : reject(e)));
      // Listeners hear of the end once stderr is drained ("close"), so that the tail holds a crash's last words;
      // at most a second after "exit", should something else hold the pipe open.
      let ended = false;
      const end = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (ended) return;
        ended = true;
        if (!ready) reject(new Error(`worker process exited before it was ready (code ${code}, signal ${signal})${this.stderrTail.trim() ? `: ${this.stderrTail.trim().split("\n").at(-1)}` : ""}`));
        for (const l of this.exitListeners) l(code, signal, this.stderrTail.trim());
      };
      child.once("exit", (code, signal) => {
        if (this.child === child) this.child = null;
        setTimeout(() => end(code, signal), 1000).unref();
      });
      child.once("close", end);
    });
  }

  onEvent(listener: (e: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hears of the process's end once, with the last lines it wrote to stderr (a crash's own message). */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null, stderrTail: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  send(command: WorkerCommand): void {
    if (!this.child) throw new Error("the worker process is not running");
    this.child.send(command);
  }

  /**
   * Sends a command and collects its events until it finishes or fails; rejects on failure or engine exit.
   */
  run(command: WorkerCommand & { id: string }, onEvent?: (e: WorkerEvent) => void): Promise<WorkerEvent[]> {
    return new Promise((resolve, reject) => {
      const events: WorkerEvent[] = [];
      const stop = this.onEvent((e) => {
        if (!("id" in e) || e.id !== command.id) return;
        events.push(e);
        onEvent?.(e);
        if (e.type === "finished") {
          done();
          resolve(events);
        } else if (e.type === "failed") {
          done();
          reject(new Error(e.message));
        } else if (e.type === "cancelled") {
          done();
          reject(new CancelledByUser());
        }
      });
      const stopExit = this.onExit((code, signal, stderrTail) => {
        done();
        reject(new WorkerExited(code, signal, stderrTail));
      });
      const done = (): void => {
        stop();
        stopExit();
      };
      this.send(command);
    });
  }

  /** The worker process's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Sends a signal to the worker process (SIGKILL in crash tests; the host uses it when cancel is ignored). */
  kill(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  dispose(): void {
    this.child?.kill();
    this.child = null;
  }
}
