/**
 * The webview side of a host connection. The app says "ready" once its listener is in place (the host posts
 * nothing before), and reports any CSP violation to the host's log, so a blocked resource is never silent.
 */

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** Messages every app may send besides its own. */
export type CommonToHost = { type: "ready" } | { type: "log"; level: "info" | "warn" | "error"; text: string };

export interface Bridge<ToHost> {
  post(message: ToHost | CommonToHost): void;
  /** The page's saved UI state (survives the panel being hidden), or undefined. */
  savedState<S>(): S | undefined;
  saveState<S>(state: S): void;
}

export function connect<ToHost, FromHost>(onMessage: (message: FromHost) => void): Bridge<ToHost> {
  const api = acquireVsCodeApi();
  const bridge: Bridge<ToHost> = {
    post: (m) => api.postMessage(m),
    savedState: <S>() => (api.getState() ?? undefined) as S | undefined,
    saveState: (s) => api.setState(s),
  };
  document.addEventListener("securitypolicyviolation", (e) => {
    bridge.post({ type: "log", level: "error", text: `CSP blocked ${e.blockedURI || "inline content"} (${e.violatedDirective})` });
  });
  window.addEventListener("error", (e) => bridge.post({ type: "log", level: "error", text: `webview error: ${e.message}` }));
  window.addEventListener("message", (e: MessageEvent<FromHost>) => onMessage(e.data));
  bridge.post({ type: "ready" });
  return bridge;
}

/** Creates an element with attributes and children; text is always set as text, never parsed as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Record<string, string | boolean | undefined>, ...children: Array<Node | string | null | undefined | false>): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Record<string, string | boolean | undefined>, ...children: Array<Node | string | null | undefined | false>): HTMLElement;
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Array<Node | string | null | undefined | false>): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
