// `vsce package` output follows .vscodeignore: the bundles, media and the engine's runtime packages only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { missingTools, packageExtension } from "./workbench";

test("the .vsix holds the bundles, media and runtime packages, and no sources, tests or dev files", { skip: missingTools() ?? false, timeout: 120_000 }, (t) => {
  const vsix = packageExtension();
  const list = spawnSync("/usr/bin/python3", ["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))", vsix], { encoding: "utf8" });
  assert.equal(list.status, 0, list.stderr);
  const files = list.stdout.trim().split("\n").map((f) => f.replace(/^extension\//, ""));
  t.diagnostic(`${vsix}: ${(statSync(vsix).size / 1e6).toFixed(2)} MB, ${files.length} files`);
  for (const need of ["package.json", "dist/extension.js", "dist/engine.js", "dist/cli.js", "media/selftrain.svg", "node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js", "node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"]) {
    assert.ok(files.includes(need), `missing ${need}`);
  }
  const forbidden = files.filter((f) => /^(src|test|scripts|webview|\.ci|\.tools|\.test-artifacts)\//.test(f) || /\.(ts|map)$/.test(f) || /^(tsconfig|package-lock)\.json$/.test(f));
  assert.deepEqual(forbidden, []);
  const modules = new Set(files.filter((f) => f.startsWith("node_modules/")).map((f) => f.split("/").slice(1, f.startsWith("node_modules/@") ? 3 : 2).join("/")));
  assert.deepEqual([...modules].sort(), ["@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-core", "seedrandom"]);
});
