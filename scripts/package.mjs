// Packages the extension for one platform: `node scripts/package.mjs [--target linux-x64] [--out file.vsix]`.
// onnxruntime-node ships native binaries for every platform in one npm package (~290 MB unpacked); a platform's
// .vsix carries only that platform's (`vsce package --target`), so the ignore file is .vscodeignore plus the
// runtime files of onnxruntime-node and onnxruntime-common for the target. vsce runs `vscode:prepublish` first
// (the production build). vsce comes from .tools/ (scripts/e2e/setup-workbench.sh) or $VSCE.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
/** vsce target → onnxruntime-node's bin/napi-v6/<platform>/<arch> (1.30 has no darwin-x64 build). */
const TARGETS = {
  "linux-x64": "linux/x64",
  "linux-arm64": "linux/arm64",
  "darwin-arm64": "darwin/arm64",
  "win32-x64": "win32/x64",
  "win32-arm64": "win32/arm64",
};

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const target = arg("--target") ?? `${process.platform}-${process.arch}`;
const bin = TARGETS[target];
if (!bin) {
  console.error(`package: no onnxruntime-node binaries for "${target}"; targets: ${Object.keys(TARGETS).join(", ")}`);
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const out = arg("--out") ?? join(root, `${pkg.name}-${target}-${pkg.version}.vsix`);
const vsce = process.env.VSCE ?? join(root, ".tools/vsce/node_modules/@vscode/vsce/vsce");
if (!existsSync(vsce)) {
  console.error(`package: @vscode/vsce not found at ${vsce}: run \`npm run setup:e2e\` (or set VSCE)`);
  process.exit(2);
}
const binDir = join(root, "node_modules/onnxruntime-node/bin/napi-v6", bin);
if (!existsSync(binDir) || readdirSync(binDir).length === 0) {
  console.error(`package: ${binDir} is missing: reinstall dependencies (npm ci)`);
  process.exit(1);
}

const ignore = readFileSync(join(root, ".vscodeignore"), "utf8") + [
  "",
  `# ${target}: onnxruntime-node's JavaScript, its binaries for ${bin} only, and onnxruntime-common (added by scripts/package.mjs)`,
  "!node_modules/onnxruntime-node/package.json",
  "!node_modules/onnxruntime-node/dist/*.js",
  `!node_modules/onnxruntime-node/bin/napi-v6/${bin}/*`,
  "!node_modules/onnxruntime-common/package.json",
  "!node_modules/onnxruntime-common/dist/cjs/*.js",
  "!node_modules/onnxruntime-common/dist/cjs/package.json",
  "",
].join("\n");
const tmp = mkdtempSync(join(tmpdir(), "sts-package-"));
try {
  const ignoreFile = join(tmp, "vscodeignore");
  writeFileSync(ignoreFile, ignore);
  const r = spawnSync(process.execPath, [vsce, "package", "--target", target, "--ignoreFile", ignoreFile, "--allow-missing-repository", "--out", out], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`package: ${out} (${target})`);
