import * as vscode from "vscode";
import { EngineClient } from "../engine/client";

/**
 * The engine process, started on first use. If it dies unexpectedly (a crash or out-of-memory in native
 * code), the editor is unaffected: the user is told, and the next command starts a fresh engine.
 */
export class EngineService implements vscode.Disposable {
  private client: EngineClient | null = null;
  private starting: Promise<EngineClient> | null = null;
  private disposed = false;

  constructor(
    private readonly script: string,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  get(): Promise<EngineClient> {
    if (this.client) return Promise.resolve(this.client);
    this.starting ??= (async () => {
      const client = new EngineClient(this.script);
      client.onExit((code, signal) => {
        if (this.client === client) this.client = null;
        if (this.disposed || code === 0) return;
        const why = signal ? `was stopped by ${signal}` : `exited with code ${code}`;
        this.output.error(`engine process ${why}`);
        void vscode.window.showErrorMessage(`The Self-Training engine ${why}. The editor is fine; finished stages are kept and the next command resumes.`, "Show Log").then((a) => a && this.output.show());
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
