/**
 * Drives the extension in a real VS Code workbench: code-server (VS Code's server and web client) from .tools/, and
 * Debian's chromium through playwright-core. @vscode/test-electron and @vscode/test-web download VS Code when the
 * tests run, which this machine cannot. scripts/e2e/setup-workbench.sh installs the tools.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { repoRoot } from "../helpers/paths";

export const artifactsDir = join(repoRoot, ".test-artifacts");
const codeServer = join(repoRoot, ".tools/code-server/node_modules/code-server/out/node/entry.js");
const vsce = join(repoRoot, ".tools/vsce/node_modules/@vscode/vsce/vsce");
const SETUP_HINT = "run scripts/e2e/setup-workbench.sh first";

/** Why the e2e tests cannot run here, or null: node:test's `skip` takes it as the reason. */
export function missingTools(): string | null {
  if (!existsSync(codeServer)) return `code-server is not installed in .tools/: ${SETUP_HINT}`;
  if (!existsSync(vsce)) return `@vscode/vsce is not installed in .tools/: ${SETUP_HINT}`;
  if (!existsSync("/usr/bin/chromium")) return `/usr/bin/chromium is missing: ${SETUP_HINT}`;
  if (!existsSync(join(repoRoot, "dist/extension.js"))) return "dist/ is not built: npm run build";
  return null;
}

/**
 * Packages the extension for this machine's platform (scripts/package.mjs: the runtime packages, and
 * onnxruntime-node's binaries for this platform only) as .test-artifacts/<name>.vsix, reusing the last one
 * while no packaged input is newer (vsce walks the production dependency tree, ~15 s).
 */
export function packageExtension(): string {
  const out = join(artifactsDir, "self-training-studio.vsix");
  const inputs = ["package.json", ".vscodeignore", "README.md", "dist", "media", "schemas", "scripts/package.mjs"].map((p) => join(repoRoot, p));
  const newest = Math.max(...inputs.filter(existsSync).flatMap(mtimes));
  if (existsSync(out) && statSync(out).mtimeMs > newest) return out;
  mkdirSync(artifactsDir, { recursive: true });
  const r = spawnSync(process.execPath, [join(repoRoot, "scripts/package.mjs"), "--target", `${process.platform}-${process.arch}`, "--out", out], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, VSCE: vsce } });
  if (r.status !== 0) throw new Error(`packaging failed:\n${r.stdout}\n${r.stderr}`);
  return out;
}

function mtimes(p: string): number[] {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).flatMap((n) => mtimes(join(p, n))) : [s.mtimeMs];
}

export interface Workbench {
  page: Page;
  url: string;
  /**
   * Runs a command by its palette title ("Category: Title"), as a user would: F1, type, Enter. A command that
   * opens a quick pick of its own names that pick's title in `opensQuickPick`: the widget then stays visible.
   */
  runCommand(title: string, opensQuickPick?: string): Promise<void>;
  /** Opens a workspace file through Quick Open (Ctrl+P), which searches with code-server's ripgrep. */
  openFile(name: string): Promise<void>;
  /** The toast whose text matches; waits for it. */
  notification(text: RegExp, timeoutMs?: number): Promise<string>;
  /** Saves .test-artifacts/<name>.png and returns its path. */
  screenshot(name: string): Promise<string>;
  /** Closes chromium, stops code-server, copies its logs into .test-artifacts/; safe to call twice. */
  stop(): Promise<void>;
}

export interface WorkbenchOptions {
  workspace: string;
  vsix: string;
  /** Milliseconds for code-server and the workbench to come up. */
  timeoutMs?: number;
}

// The welcome page, tips, update and telemetry prompts would otherwise cover the editor area or add toasts.
const SETTINGS = {
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "chat.commandCenter.enabled": false,
  "git.enabled": false,
};

/** Starts code-server on a free loopback port with the vsix installed in a fresh profile, and opens it in chromium. */
export async function startWorkbench({ workspace, vsix, timeoutMs = 60_000 }: WorkbenchOptions): Promise<Workbench> {
  const why = missingTools();
  if (why) throw new Error(why);
  mkdirSync(artifactsDir, { recursive: true });
  rmSync(join(artifactsDir, "code-server-logs"), { recursive: true, force: true });
  const home = mkdtempSync(join(tmpdir(), "sts-workbench-"));
  const dirs = ["--extensions-dir", join(home, "extensions"), "--user-data-dir", join(home, "user")];
  mkdirSync(join(home, "user/User"), { recursive: true });
  writeFileSync(join(home, "user/User/settings.json"), JSON.stringify(SETTINGS, null, 2));
  // A clean environment apart from PATH and HOME: VSCODE_* variables from a surrounding VS Code would leak in.
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, TMPDIR: home, LANG: "C.UTF-8" };

  const install = spawnSync(process.execPath, [codeServer, ...dirs, "--install-extension", resolve(vsix)], { env, encoding: "utf8", timeout: 120_000 });
  if (install.status !== 0 || !/was successfully installed/.test(install.stdout)) {
    rmSync(home, { recursive: true, force: true });
    throw new Error(`code-server --install-extension failed (${install.status}):\n${install.stdout}\n${install.stderr}`);
  }

  let server: ChildProcess | null = null;
  let browser: Browser | null = null;
  let stopped = false;
  const killServer = (): void => {
    // detached: code-server and its extension host, pty host and our engine share one process group, which may
    // outlive code-server itself.
    if (server?.pid) try { process.kill(-server.pid, "SIGKILL"); } catch { /* the group is gone */ }
  };
  // The test process ends before stop() (a crash, or Ctrl+C, which the detached group does not receive): leave
  // nothing behind. A signal handler replaces Node's default exit, so it exits itself after the kill.
  const onSignal = (signal: NodeJS.Signals): void => {
    killServer();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("exit", killServer).once("SIGINT", onSignal).once("SIGTERM", onSignal);
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await browser?.close().catch(() => undefined);
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise((r) => server?.once("exit", r));
      try { process.kill(-server.pid, "SIGTERM"); } catch { /* gone */ }
      await Promise.race([exited, delay(5_000)]);
      killServer();
    }
    process.removeListener("exit", killServer).removeListener("SIGINT", onSignal).removeListener("SIGTERM", onSignal);
    const logs = join(home, "user/logs");
    if (existsSync(logs)) cpSync(logs, join(artifactsDir, "code-server-logs"), { recursive: true });
    rmSync(home, { recursive: true, force: true });
  };

  try {
    const port = await freePort();
    const log = createWriteStream(join(artifactsDir, "code-server.log"));
    server = spawn(process.execPath, [codeServer, "--bind-addr", `127.0.0.1:${port}`, "--auth", "none", "--disable-telemetry",
      "--disable-update-check", "--disable-workspace-trust", ...dirs, workspace], { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    server.stdout?.pipe(log);
    server.stderr?.pipe(log);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/healthz`)).ok, timeoutMs, () => `code-server did not answer on ${base} (see .test-artifacts/code-server.log)`);

    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      // playwright gives each launch a fresh temporary --user-data-dir (it refuses one in args) and adds --headless.
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      env, // HOME too: chromium would otherwise create ~/.config/chromium/Crash Reports and ~/.cache/dconf
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const url = `${base}/?folder=${encodeURIComponent(resolve(workspace))}`;
    await page.goto(url);
    // The status bar shows once the workbench has restored its parts, the explorer's tree once the folder is open
    // (it may have no rows). Commands and files show up later; runCommand and openFile wait for their entry.
    await page.locator(".monaco-workbench .part.statusbar").waitFor({ timeout: timeoutMs });
    await page.locator(".explorer-folders-view").waitFor({ state: "attached", timeout: timeoutMs });

    const pick = async (prefixKey: string, text: string, row: (label: string) => boolean, nextTitle?: string): Promise<void> => {
      const input = page.locator(".quick-input-widget input");
      const rows = page.locator(".quick-input-list .monaco-list-row");
      const listed = async (): Promise<boolean> => {
        for (const r of await rows.all()) if (row((await r.getAttribute("aria-label")) ?? "")) return true;
        return false;
      };
      // Wait until the wanted entry is listed (extensions and file search fill the list asynchronously), then
      // make it the active row: Enter alone could take a stale first row. The command palette lists the commands
      // known when it opened: right after start-up an extension's may not be registered yet, so it is reopened.
      const end = Date.now() + 30_000;
      for (;;) {
        await page.keyboard.press(prefixKey);
        await input.waitFor();
        await input.pressSequentially(text);
        try {
          await waitFor(listed, 5_000, () => `"${text}" is not listed in the quick pick`);
          break;
        } catch (e) {
          if (Date.now() > end) throw e;
          await page.keyboard.press("Escape");
          await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
        }
      }
      const labels = await Promise.all((await rows.all()).map((r) => r.getAttribute("aria-label")));
      const index = labels.findIndex((l) => row(l ?? ""));
      for (let i = 0; i < index; i++) await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Enter");
      if (nextTitle === undefined) await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
      else await page.locator(".quick-input-widget .quick-input-title").filter({ hasText: nextTitle }).waitFor();
    };

    return {
      page,
      url,
      // A command row reads its title, then ", recently used" or the like.
      runCommand: (title, opensQuickPick) => pick("F1", title, (label) => label === title || label.startsWith(`${title},`), opensQuickPick),
      openFile: async (name) => {
        // A file row reads "train.jsonl data, file results": name, folder, then the separator's label.
        await pick("Control+P", name, (label) => label === name || label.startsWith(`${name} `) || label.startsWith(`${name},`));
        await page.locator(`.tabs-container .tab[aria-label^="${name}"]`).waitFor();
      },
      notification: async (text, ms = 30_000) => {
        // fade-in-done: the toast has finished sliding in, so a screenshot shows it opaque.
        const toast = page.locator(".notification-toast.notification-fade-in-done .notification-list-item-message").filter({ hasText: text }).first();
        await toast.waitFor({ timeout: ms });
        return (await toast.textContent()) ?? "";
      },
      screenshot: async (name) => {
        const file = join(artifactsDir, `${name}.png`);
        await page.screenshot({ path: file });
        return file;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer().once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, ms: number, message: () => string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(message());
    await delay(250);
  }
}
