import * as vscode from "vscode";
import { defaultConfig } from "../core/selftrain/config";

/**
 * The `selfTraining.*` settings a user has set (user or workspace level), as overrides of the core defaults
 * for a new workspace's .selftrain/config.json. Only this file reads VS Code settings.
 */
export function settingsOverrides(): Record<string, unknown> {
  const section = vscode.workspace.getConfiguration("selfTraining");
  const out: Record<string, unknown> = {};
  const walk = (node: Record<string, unknown>, path: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      const at = [...path, key];
      if (typeof value === "object" && value !== null) {
        walk(value as Record<string, unknown>, at);
        continue;
      }
      const info = section.inspect(at.join("."));
      const set = info?.workspaceFolderValue ?? info?.workspaceValue ?? info?.globalValue;
      if (set === undefined) continue;
      let target = out;
      for (const p of path.concat(key).slice(0, -1)) target = (target[p] ??= {}) as Record<string, unknown>;
      target[key] = set;
    }
  };
  walk(defaultConfig() as unknown as Record<string, unknown>, []);
  delete out["formatVersion"];
  return out;
}
