import { readFileSync } from "node:fs";
import { ConfigError, parseConfig } from "./config";
import type { SelfTrainConfig } from "./configTypes";
import type { SettingGroup } from "./configRules";
import { jsonBreakOffset, locateJsonKey, positionAt } from "../util/jsonKeyLocation";
import { errorCode } from "../store/fsErrors";

/** What is wrong with config.json, and where in it: what the explorer shows in place, and ▶ says before starting. */
export interface ConfigProblem {
  file: string;
  /** Without the file: "sampling.maxNewToken is not a setting; did you mean maxNewTokens?". */
  message: string;
  /** The setting it is about ("sampling.maxNewToken"), null when it is about the whole file. */
  setting: string | null;
  /** Where to put the cursor (0-based; the problems of a file come in this order): on the setting's key, else its nearest enclosing key in the file, else where the JSON breaks. */
  line: number;
  character: number;
  /** Characters to select from there (the key's name), 0 for a bare cursor. */
  length: number;
}

/**
 * A workspace's config as far as it can be read. `config` is what parseConfig gives once the settings named in
 * `problems` are left out (`dropped`: the keys left out, so a caller shows only what they do not touch), or null
 * when nothing usable is left (no JSON object to read). No problems: the config is the file's, whole.
 */
export interface ConfigRead {
  config: SelfTrainConfig | null;
  problems: ConfigProblem[];
  dropped: string[];
}

/** Problems listed at most: a file with more has far worse trouble than a list shows. */
const MOST_PROBLEMS = 20;

export function readConfigProblems(file: string): ConfigRead {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const message = errorCode(e) === "EISDIR" ? "a folder, not a file: remove it or move it elsewhere" : e instanceof Error ? e.message : String(e);
    return { config: null, problems: [{ file, message, setting: null, line: 0, character: 0, length: 0 }], dropped: [] };
  }
  return configProblems(text, file);
}

/** readConfigProblems on a config's text (`file` names it in the problems). */
export function configProblems(text: string, file: string): ConfigRead {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    const at = /at position (\d+)/.exec(why);
    const offset = at ? Number(at[1]) : (jsonBreakOffset(text) ?? 0);
    return { config: null, problems: [{ file, message: `not valid JSON (${why})`, setting: null, ...positionAt(text, offset), length: 0 }], dropped: [] };
  }
  const problems: ConfigProblem[] = [];
  const dropped: string[] = [];
  const rest = structuredClone(raw);
  // Listed in the file's order, as the person reads it (they are found in the order parseConfig checks).
  const done = (config: SelfTrainConfig | null): ConfigRead => ({ config, problems: problems.sort((a, b) => a.line - b.line || a.character - b.character), dropped });
  for (;;) {
    try {
      return done(parseConfig(rest, file));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const keys = e.setting?.split(".") ?? [];
      const place = locateJsonKey(text, keys);
      problems.push({ file, message: e.reason, setting: e.setting, line: place?.line ?? 0, character: place?.character ?? 0, length: place?.length ?? 0 });
      // Left out, the next parse finds the next problem, or a config for what the rest of the file says.
      const present = deepestPresent(rest, keys);
      if (present.length === 0 || problems.length >= MOST_PROBLEMS) return done(null);
      removeAt(rest, present);
      dropped.push(present.join("."));
    }
  }
}

/** Whether what a group of settings configures is read whole: none of its settings was left out of `read`. */
export function groupIntact(read: ConfigRead, group: SettingGroup): boolean {
  return read.config !== null && !read.dropped.some((p) => p === group || p.startsWith(`${group}.`));
}

/** The longest start of `keys` that `o` has (a setting left at its default is not in the file; its group may be). */
function deepestPresent(o: unknown, keys: string[]): string[] {
  const out: string[] = [];
  let at = o;
  for (const k of keys) {
    if (typeof at !== "object" || at === null || Array.isArray(at) || !Object.hasOwn(at, k)) break;
    at = (at as Record<string, unknown>)[k];
    out.push(k);
  }
  return out;
}

function removeAt(o: unknown, keys: string[]): void {
  const parent = keys.slice(0, -1).reduce((x, k) => (x as Record<string, unknown>)[k], o) as Record<string, unknown>;
  delete parent[keys.at(-1)!];
}
