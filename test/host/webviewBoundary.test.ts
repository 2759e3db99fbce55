import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import { repoRoot } from "../helpers/paths";

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("webview apps import only the shared protocol, each other's common code and browser packages: never core, host, node or vscode", () => {
  const webview = join(repoRoot, "webview");
  const shared = join(repoRoot, "src", "shared");
  const bad: string[] = [];
  for (const file of tsFiles(webview)) {
    for (const m of readFileSync(file, "utf8").matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']/g)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(webview + "/") && !target.startsWith(shared + "/")) bad.push(`${relative(repoRoot, file)} imports ${spec}`);
      } else if (spec === "vscode" || spec.startsWith("node:") || ["fs", "path", "child_process", "crypto"].includes(spec)) {
        bad.push(`${relative(repoRoot, file)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test("the shared protocol imports nothing but itself: both sides can compile it", () => {
  const shared = join(repoRoot, "src", "shared");
  for (const file of tsFiles(shared)) {
    for (const m of readFileSync(file, "utf8").matchAll(/from\s*["']([^"']+)["']/g)) {
      assert.ok(m[1]!.startsWith("./"), `${relative(repoRoot, file)} imports ${m[1]}`);
    }
  }
});
