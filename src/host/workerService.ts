import * as vscode from "vscode";
import { WorkerClient } from "../worker/client";
import { workerEndHow, workerExitNotice } from "../shared/workerExit";

/**
 * The worker process, started on first use. If it dies unexpectedly (a crash or out-of-memory in native
 * code), the editor is unaffected: the user is told what the CLI would say (workerExitNotice: a kill resumes with
 * the same command, a crash of its own would come again and says what to fix), and the next command starts a
 * fresh engine.
 */
export class WorkerService implements vscode.Disposable {
  private client: WorkerClient | null = null;
  private starting: Promise<WorkerClient> | null = null;
  private disposed = false;

  constructor(
    private readonly script: string,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  get(): Promise<WorkerClient> {
    if (this.client) return Promise.resolve(this.client);
    this.starting ??= (async () => {
      const client = new WorkerClient(this.script);
      client.onExit((code, signal, stderrTail) => {
        if (this.client === client) this.client = null;
        if (this.disposed || code === 0) return;
        const end = { code, signal, stderrTail };
        this.output.error(`worker process ${workerEndHow(end)}${stderrTail ? `; its last output:\n${stderrTail}` : ""}`);
        void vscode.window.showErrorMessage(workerExitNotice(end), "Show Log").then((a) => a && this.output.show());
      });
      client.onEvent((e) => {
        if (e.type === "log") this.output[e.level === "info" ? "info" : e.level](e.message);
      });
      await client.start();
      this.client = client;
      return client;
    })().finally(() => (this.starting = null));
    return this.starting;
  }

  dispose(): void {
    this.disposed = true;
    this.client?.dispose();
    this.client = null;
  }
}
