// The project's Python environment (.venv, made by `npm test`'s pretest: scripts/python/prepare.sh) for the tests
// that take a real library as the reference: where the interpreter or a package is missing, a test skips with the
// line skipWithoutVenv gives; the scripts run with runVenvJson, one JSON object in and one out.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./paths";

export const venvPython = join(repoRoot, ".venv", "bin", "python");

/**
 * false when .venv/bin/python finds every module (without importing them: milliseconds), else the line a
 * skipped test shows, naming what is missing and the command that makes it.
 */
export function skipWithoutVenv(modules: readonly string[]): string | false {
  if (!existsSync(venvPython)) return `no .venv (npm run setup:python; npm test makes it): skipped`;
  const probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m) is None))";
  const r = spawnSync(venvPython, ["-c", probe, ...modules], { encoding: "utf8" });
  if (r.status !== 0) return `.venv/bin/python does not run (${(r.stderr || r.error?.message || "").trim().split("\n").pop()}): skipped`;
  const missing = r.stdout.trim();
  return missing ? `.venv lacks ${missing.split(" ").join(", ")} (npm run setup:python installs requirements-dev.txt): skipped` : false;
}

/** Runs a Python script beside its test with .venv's interpreter on `job` (written to `dir`/job.json); its stdout as JSON. */
export function runVenvJson<T>(script: string, job: unknown, dir: string): T {
  const file = join(dir, "job.json");
  writeFileSync(file, JSON.stringify(job));
  const r = spawnSync(venvPython, [script, file], { encoding: "utf8", maxBuffer: 1 << 28, env: { ...process.env, PYTHONWARNINGS: "ignore" } });
  assert.equal(r.status, 0, `${script} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * The SmolLM2-135M-Instruct folder `npm run model:smollm2` converts (scripts/models/smollm2.sh's cache folder,
 * complete once its selftrain-source.json is written), or $SELFTRAIN_SMOLLM2; null where there is none.
 */
export function convertedSmollm2Dir(): string | null {
  const env = process.env["SELFTRAIN_SMOLLM2"];
  if (env) return existsSync(join(env, "config.json")) && existsSync(join(env, "tokenizer.json")) ? env : null;
  const cache = process.env["SELFTRAIN_MODELS_DIR"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "selftrain", "models");
  const dir = join(cache, "SmolLM2-135M-Instruct");
  return existsSync(join(dir, "selftrain-source.json")) ? dir : null;
}
