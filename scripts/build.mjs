// Bundles the extension host, the worker process, the CLI and the webview apps into dist/ with esbuild.
// Type checking is separate (npm run typecheck). Native and WebAssembly packages stay external: they are
// loaded from node_modules at run time.
import { build } from "esbuild";
import { existsSync, readdirSync, chmodSync, rmSync, mkdirSync, copyFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const production = process.argv.includes("--production");
// tfjs-core itself is required at run time by src/core/engine/tf/tfBackend.ts (a variable require esbuild leaves
// alone), so the wasm and native backends and our code share node_modules' copy. Its ESM-only registration
// modules (gradients, chained ops) are bundled; they register into tfjs-core's global registries.
const external = [
  "vscode",
  "@tensorflow/tfjs-backend-webgpu",
  "onnxruntime-node",
  "@tensorflow/tfjs-node",
  "@tensorflow/tfjs-node-gpu",
  "@tensorflow/tfjs-backend-wasm",
  "webgpu",
];
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: production ? false : "linked",
  minify: production,
  external,
  logLevel: "warning",
};

rmSync(join(root, "dist"), { recursive: true, force: true });
const node = [
  { entryPoints: [join(root, "src/host/extension.ts")], outfile: join(root, "dist/extension.js") },
  { entryPoints: [join(root, "src/worker/main.ts")], outfile: join(root, "dist/worker.js") },
  { entryPoints: [join(root, "src/cli/main.ts")], outfile: join(root, "dist/cli.js")},
];
// Each webview app is webview/<name>/main.ts → dist/webview/<name>.js (browser, DOM lib).
const webviewDir = join(root, "webview");
const apps = existsSync(webviewDir)
  ? readdirSync(webviewDir).filter((d) => existsSync(join(webviewDir, d, "main.ts")))
  : [];
await Promise.all([
  ...node.map((o) => build({ ...common, ...o })),
  ...apps.map((name) =>
    build({
      ...common,
      platform: "browser",
      format: "iife",
      target: "es2022",
      external: [],
      entryPoints: [join(webviewDir, name, "main.ts")],
      // Fonts referenced from CSS stay files beside the bundle (the CSP allows fonts from there only).
      loader: { ".ttf": "file", ".woff2": "file" },
      outfile: join(root, "dist", "webview", `${name}.js`),
    }),
  ),
]);
chmodSync(join(root, "dist/cli.js"), 0o755);
// The codicon font, loaded by the webviews under a CSP that allows fonts from the extension only.
mkdirSync(join(root, "dist", "webview"), { recursive: true });
for (const f of ["codicon.css", "codicon.ttf"]) copyFileSync(join(root, "node_modules/@vscode/codicons/dist", f), join(root, "dist", "webview", f));
console.log(`built dist/extension.js, dist/worker.js, dist/cli.js${apps.length ? ", " + apps.map((a) => `dist/webview/${a}.js`).join(", ") : ""}`);
