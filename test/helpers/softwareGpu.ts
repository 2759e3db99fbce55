/**
 * Tests on the webgpu provider run on Mesa's software GPU (lavapipe, unpacked into .tools/ by
 * scripts/gpu/setup-lavapipe.sh) in a child process started with its environment: LD_LIBRARY_PATH is read only
 * at process start. A test file runs itself again so, with an environment variable that picks the provider.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./paths";

const lavapipeEnv = join(repoRoot, ".tools", "lavapipe", "env.sh");

/** `skip` for node:test: false where the software GPU is set up, otherwise the reason. */
export const softwareGpuSkip: false | string = existsSync(lavapipeEnv) ? false : "no software GPU: run scripts/gpu/setup-lavapipe.sh (Debian bookworm) to test the webgpu provider";

/** Runs test `file` in a child on the software GPU with `env` added (and only tests matching `pattern`). */
export function runOnSoftwareGpu(file: string, env: Record<string, string>, options: { pattern?: string; timeoutMs: number }): { status: number | null; stdout: string; stderr: string } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv["NODE_TEST_CONTEXT"]; // the child reports as a plain test file, not to this runner
  const pattern = options.pattern ? ` --test-name-pattern=${options.pattern}` : "";
  return spawnSync("bash", ["-c", `. "${lavapipeEnv}" && exec "${process.execPath}" --import tsx --test-reporter=spec${pattern} "${file}"`], { cwd: repoRoot, env: childEnv, encoding: "utf8", timeout: options.timeoutMs });
}

/**
 * Runs `file` as a plain script (not a test file) in a child on the software GPU with `env` added, keeping all of
 * its output: a script that opens sessions with ONNX Runtime's verbose log writes megabytes to stderr. Its stderr
 * goes to a file, not a pipe: ONNX Runtime's native logger writes to fd 2, which Node leaves non-blocking on a
 * pipe, so lines were dropped whenever the pipe was full (a different number on every run, more under load).
 */
export function runScriptOnSoftwareGpu(file: string, env: Record<string, string>, options: { timeoutMs: number }): { status: number | null; stdout: string; stderr: string } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv["NODE_TEST_CONTEXT"];
  const dir = mkdtempSync(join(tmpdir(), "sts-gpu-"));
  const errFile = join(dir, "stderr");
  try {
    const r = spawnSync("bash", ["-c", `. "${lavapipeEnv}" && exec "${process.execPath}" --import tsx "${file}" 2> "${errFile}"`], { cwd: repoRoot, env: childEnv, encoding: "utf8", timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { status: r.status, stdout: r.stdout, stderr: existsSync(errFile) ? readFileSync(errFile, "utf8") : r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
