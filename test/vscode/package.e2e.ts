// The platform's .vsix (scripts/package.mjs): the bundles, media and the engine's runtime packages only, with
// onnxruntime-node's native binaries for this platform and no other.
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
  for (const need of ["package.json", "dist/extension.js", "dist/worker.js", "dist/cli.js", "media/selftrain.svg", "schemas/selftrain-config.schema.json", "node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js", "node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"]) {
    assert.ok(files.includes(need), `missing ${need}`);
  }
  const forbidden = files.filter((f) => /^(src|test|scripts|webview|\.ci|\.tools|\.test-artifacts)\//.test(f) || /\.(ts|map)$/.test(f) || /^(tsconfig|package-lock)\.json$/.test(f));
  assert.deepEqual(forbidden, []);
  const modules = new Set(files.filter((f) => f.startsWith("node_modules/")).map((f) => f.split("/").slice(1, f.startsWith("node_modules/@") ? 3 : 2).join("/")));
  assert.deepEqual([...modules].sort(), ["@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-core", "onnxruntime-common", "onnxruntime-node", "seedrandom"]);
  const platform = `${process.platform}/${process.arch}`;
  const binaries = files.filter((f) => f.startsWith("node_modules/onnxruntime-node/bin/"));
  assert.ok(binaries.includes(`node_modules/onnxruntime-node/bin/napi-v6/${platform}/onnxruntime_binding.node`), binaries.join(", "));
  assert.deepEqual(binaries.filter((f) => !f.startsWith(`node_modules/onnxruntime-node/bin/napi-v6/${platform}/`)), [], "other platforms' binaries");
  // The target is in the manifest, so the Marketplace serves each platform its own package.
  const manifest = spawnSync("/usr/bin/python3", ["-c", "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read('extension.vsixmanifest').decode())", vsix], { encoding: "utf8" }).stdout;
  assert.match(manifest, new RegExp(`TargetPlatform="${process.platform}-${process.arch}"`));
});
