import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../src/core/selftrain/config";
import { repoRoot } from "../helpers/paths";

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
// activate() registers through the command files in src/host/commands/.
const commandsDir = join(repoRoot, "src/host/commands");
const host = [join(repoRoot, "src/host/extension.ts"), ...readdirSync(commandsDir).map((f) => join(commandsDir, f))].map((f) => readFileSync(f, "utf8")).join("\n");

test("every contributed command has a handler, and every handler is contributed", () => {
  const contributed = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));
  const registered = new Set([...host.matchAll(/command\("(selfTraining\.[A-Za-z]+)"/g)].map((m) => m[1]!));
  assert.deepEqual([...contributed].sort(), [...registered].sort());
  for (const c of pkg.contributes.commands) assert.equal(c.category, "Self-Training", c.command);
  const titles = pkg.contributes.commands.map((c: { title: string }) => c.title);
  for (const t of ["Start Self-Training Round", "Run Warm-up SFT", "Evaluate Model", "Stop", "Open Metrics Dashboard", "Review Rationales", "Export Preference Pairs", "Initialize Workspace"]) assert.ok(titles.includes(t), t);
  // Every command a menu names exists.
  for (const items of Object.values(pkg.contributes.menus) as Array<Array<{ command: string }>>) for (const m of items) assert.ok(contributed.has(m.command), m.command);
});

test("settings mirror the core defaults one for one, each with a description", () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default: unknown; description: string; type: string }>;
  const leaves: Array<[string, unknown]> = [];
  const walk = (o: Record<string, unknown>, path: string[]): void => {
    for (const [k, v] of Object.entries(o)) typeof v === "object" && v !== null ? walk(v as Record<string, unknown>, [...path, k]) : leaves.push([[...path, k].join("."), v]);
  };
  walk(defaultConfig() as unknown as Record<string, unknown>, []);
  const expected = leaves.filter(([k]) => k !== "formatVersion");
  assert.deepEqual(Object.keys(props).sort(), expected.map(([k]) => `selfTraining.${k}`).sort());
  for (const [k, v] of expected) {
    const p = props[`selfTraining.${k}`]!;
    assert.deepEqual(p.default, v, k);
    assert.ok(p.description.length > 10, k);
  }
});

test("the view, its welcome, untrusted-workspace limits and the packaging allow-list", () => {
  assert.equal(pkg.contributes.views.selfTraining[0].id, "selfTraining.explorer");
  assert.equal(pkg.contributes.views.selfTraining[0].name, "Dataset Explorer");
  assert.match(pkg.contributes.viewsWelcome[0].contents, /\[Initialize Workspace\]\(command:selfTraining\.initWorkspace\)/);
  assert.ok(existsSync(join(repoRoot, pkg.contributes.viewsContainers.activitybar[0].icon)));
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, "limited");
  // Commands that train are off while a job runs (▶ greys out, ■ Stop shows in the view title); all need trust.
  for (const c of pkg.contributes.commands.filter((c: { command: string }) => /startRound|warmup|evaluate|initWorkspace|mark|exclude/.test(c.command))) {
    assert.equal(c.enablement, /startRound|warmup|evaluate/.test(c.command) ? "isWorkspaceTrusted && !selfTraining.running" : "isWorkspaceTrusted", c.command);
  }
  assert.ok(pkg.contributes.menus["view/title"].some((m: { command: string; when: string }) => m.command === "selfTraining.stop" && m.when === "view == selfTraining.explorer && selfTraining.running"));
  const ignore = readFileSync(join(repoRoot, ".vscodeignore"), "utf8");
  assert.match(ignore, /^\*\*$/m);
  for (const keep of ["!dist/extension.js", "!dist/worker.js", "!media/**"]) assert.ok(ignore.includes(keep), keep);
});
