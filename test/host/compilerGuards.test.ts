import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../helpers/paths";

// The layer boundaries are the compiler's to keep (npm run typecheck runs these projects): each probe is a file
// that crosses a boundary, compiled inside the project it belongs to, and the compiler must refuse it.
const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");

function compileProbe(t: { after: (fn: () => void) => void }, project: string, include: string[], probe: string): string {
  const dir = tempDir(t);
  const file = join(dir, "probe.ts");
  writeFileSync(file, probe);
  const config = join(dir, "tsconfig.json");
  writeFileSync(config, JSON.stringify({ extends: join(repoRoot, project), compilerOptions: { rootDir: "/", typeRoots: [join(repoRoot, "node_modules", "@types")] }, include: [...include.map((p) => join(repoRoot, p)), file] }));
  const r = spawnSync(process.execPath, [tsc, "-p", config, "--noEmit"], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`;
}

test("a webview app cannot import core or host code: the webview project refuses the file", (t) => {
  const out = compileProbe(t, "webview/tsconfig.json", ["webview/**/*.ts", "src/shared/**/*.ts"], `import { RunStore } from "${join(repoRoot, "src/core/store/runStore")}";\nexport const probe = RunStore;\n`);
  assert.match(out, /probe\.ts\(1,\d+\): error TS6307: File '[^']*src\/core\/store\/runStore\.ts' is not listed within the file list of project/);
});

test("src/core cannot use vscode nor import the host: the core project refuses both", (t) => {
  const out = compileProbe(t, "src/core/tsconfig.json", ["src/core/**/*.ts", "src/shared/**/*.ts"], `import * as vscode from "vscode";\nimport { Host } from "${join(repoRoot, "src/host/host")}";\nexport const probe = [vscode.window, Host];\n`);
  assert.match(out, /probe\.ts\(3,\d+\): error TS2339: Property 'window' does not exist on type 'typeof import\("[^"]*vscode-is-not-for-src-core"\)'/);
  assert.match(out, /probe\.ts\(2,\d+\): error TS6307: File '[^']*src\/host\/host\.ts' is not listed within the file list of project/);
});
