// Runs every test/**/*.test.ts with Node's own test runner (TypeScript through tsx).
// Node 20's --test takes no globs, so the files are listed here. Extra arguments filter by path substring.
// --e2e runs test/**/*.e2e.ts instead, one file at a time: each drives its own code-server and chromium.
// --heavy runs test/**/*.heavy.ts instead: checks against real models and libraries that take minutes
// (npm run test:heavy, which .ci/run also runs).
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const e2e = process.argv.includes("--e2e");
const heavy = process.argv.includes("--heavy");
const suffix = e2e ? ".e2e.ts" : heavy ? ".heavy.ts" : ".test.ts";
const filters = process.argv.slice(2).filter((a) => a !== "--e2e" && a !== "--heavy");
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(suffix) ? [p] : [];
  });
}
const files = walk(join(root, "test"))
  .map((p) => relative(root, p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)))
  .sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const reporter = process.env.TEST_REPORTER ?? "spec";
const r = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", `--test-reporter=${reporter}`, `--test-concurrency=${e2e || heavy ? 1 : 2}`, ...files],
  { cwd: root, stdio: "inherit" },
);
process.exit(r.status ?? 1);
