import { fork, type ChildProcess } from "node:child_process";
import { isWorkerEvent, type WorkerCommand, type WorkerEvent } from "../shared/workerProtocol";

/** The worker process ended while a job ran (a crash, a kill): reported once, by whoever watches its exit. */
export class WorkerExited extends Error {
  constructor(code: number | null, signal: NodeJS.Signals | null) {
    super(`worker process stopped (code ${code}, signal ${signal})`);
    this.name = "WorkerExited";
  }
}

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
  private exitListeners = new Set<(code: number | null, signal: NodeJS.Signals | null) => void>();

  constructor(private readonly engineScript: string) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = fork(this.engineScript, [], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
      this.child = child;
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
      child.once("exit", (code, signal) => {
        this.child = null;
        if (!ready) reject(new Error(`worker process exited before it was ready (code ${code}, signal ${signal})`));
        for (const l of this.exitListeners) l(code, signal);
      });
    });
  }

  onEvent(listener: (e: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  send(command: WorkerCommand): void {
    if (!this.child) throw new Error("engine is not running");
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
      const stopExit = this.onExit((code, signal) => {
        done();
        reject(new WorkerExited(code, signal));
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
