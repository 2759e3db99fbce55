import * as vscode from "vscode";
import { randomBytes } from "node:crypto";
import type { Checked } from "../shared/messageGuards";

export interface WebviewAppSpec<In extends { type: string }> {
  viewType: string;
  title: string;
  /** The bundle name: dist/webview/<app>.js and .css. */
  app: string;
  /** The host's check of every incoming message (the shared protocol's guard). */
  check: (raw: unknown) => Checked<In>;
}

/**
 * One webview panel running a bundled app. The host owns the state: it posts only after the app has said
 * "ready" (messages posted earlier would be lost while the page loads), checks every incoming message
 * against the shared protocol and drops malformed ones with a logged reason. The page has a strict CSP:
 * nothing loads except the app's own bundle, its CSS and the codicon font, scripts only by a fresh nonce.
 */
export class WebviewApp<In extends { type: string }, Out> implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private queued: Out[] = [];
  private readonly onMessageEmitter = new vscode.EventEmitter<In>();
  private readonly onReadyEmitter = new vscode.EventEmitter<void>();
  /** Every checked message other than "ready". */
  readonly onMessage = this.onMessageEmitter.event;
  /** Fired each time the page (re)loads and says ready: the host then posts its whole state. */
  readonly onReady = this.onReadyEmitter.event;
  readonly onDidDispose: vscode.Event<void>;

  constructor(
    extensionUri: vscode.Uri,
    private readonly spec: WebviewAppSpec<In>,
    private readonly log: vscode.LogOutputChannel,
    column: vscode.ViewColumn = vscode.ViewColumn.Active,
  ) {
    const built = vscode.Uri.joinPath(extensionUri, "dist", "webview");
    this.panel = vscode.window.createWebviewPanel(spec.viewType, spec.title, column, {
      enableScripts: true,
      localResourceRoots: [built, vscode.Uri.joinPath(extensionUri, "media")],
    });
    this.panel.iconPath = vscode.Uri.joinPath(extensionUri, "media", "selftrain.svg");
    this.panel.webview.html = webviewHtml(this.panel.webview, built, spec.app, spec.title);
    this.onDidDispose = this.panel.onDidDispose;
    this.disposables.push(
      this.onMessageEmitter,
      this.onReadyEmitter,
      this.panel.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw)),
      this.panel.onDidDispose(() => this.dispose()),
    );
  }

  private receive(raw: unknown): void {
    if (typeof raw === "object" && raw !== null && (raw as { type?: unknown }).type === "ready") {
      this.ready = true;
      const queued = this.queued;
      this.queued = [];
      this.onReadyEmitter.fire();
      for (const m of queued) void this.panel.webview.postMessage(m);
      return;
    }
    const checked = this.spec.check(raw);
    if (!checked.ok) {
      this.log.warn(`${this.spec.title}: dropped a message from the webview: ${checked.reason}`);
      return;
    }
    this.onMessageEmitter.fire(checked.value);
  }

  /** Posts now when the page is ready, else when it says ready. */
  post(message: Out): void {
    if (this.ready) void this.panel.webview.postMessage(message);
    else this.queued.push(message);
  }

  get visible(): boolean {
    return this.panel.visible;
  }

  reveal(): void {
    this.panel.reveal();
  }

  dispose(): void {
    const list = this.disposables.splice(0);
    for (const d of list) d.dispose();
    if (list.length > 0) this.panel.dispose();
  }
}

/** 128 random bits, base64: a nonce a page cannot guess (never Math.random). */
export function newNonce(): string {
  return randomBytes(16).toString("base64");
}

export function webviewHtml(webview: vscode.Webview, built: vscode.Uri, app: string, title: string): string {
  const nonce = newNonce();
  const uri = (file: string): string => webview.asWebviewUri(vscode.Uri.joinPath(built, file)).toString();
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `img-src ${webview.cspSource} data:`,
  ].join("; ");
  const escaped = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" id="vscode-codicon-stylesheet" href="${uri("codicon.css")}" nonce="${nonce}">
<link rel="stylesheet" href="${uri(`${app}.css`)}" nonce="${nonce}">
<title>${escaped}</title>
</head>
<body>
<main id="app" aria-busy="true"></main>
<script nonce="${nonce}" src="${uri(`${app}.js`)}"></script>
</body>
</html>`;
}
