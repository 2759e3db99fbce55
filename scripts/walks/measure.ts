// Runs one command with a time limit and measures it: exit code or signal, output, wall time, and the peak
// resident memory of the process and everything it waited for (the CLI and its worker process; the largest one,
// not their sum, as getrusage reports it). For scripts/walks/*.ts.
//
// Peak memory comes from, in this order: GNU time (`/usr/bin/time -f %M`), a tiny python3 wrapper reading
// resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, or VmHWM polled from /proc/<pid>/status. Where /proc exists,
// VmHWM of every descendant is polled as well (every 50 ms) and the larger figure is kept: getrusage counts only
// processes that were waited for, and the CLI exits without waiting for the worker it stops (init reaps it), so
// the worker's memory would otherwise be missed. Polling misses only a process that lives less than one poll.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

export type RssMethod = "gnu-time" | "python-rusage" | "proc-vmhwm" | "none";

export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set of the largest process of the tree, in KiB; null when it could not be read. */
  peakKiB: number | null;
}

/** The best way to measure peak memory on this machine. */
/** How rssMethod's figures are got, for a report's header. */
export function describeRssMethod(method: RssMethod): string {
  const polled = existsSync("/proc/self/status") ? "VmHWM of every descendant polled from /proc" : null;
  const waited = method === "gnu-time" ? "/usr/bin/time -f %M" : method === "python-rusage" ? "python3 getrusage(RUSAGE_CHILDREN)" : null;
  return [waited, polled].filter((x) => x).join(" and ") || "nothing (no /usr/bin/time, python3 nor /proc)";
}

export function rssMethod(): RssMethod {
  if (existsSync("/usr/bin/time") && spawnSync("/usr/bin/time", ["-f", "%M", "true"], { encoding: "utf8" }).stderr.trim().match(/^\d+$/m)) return "gnu-time";
  if (spawnSync("python3", ["-c", "import resource"], { encoding: "utf8" }).status === 0) return "python-rusage";
  if (existsSync("/proc/self/status")) return "proc-vmhwm";
  return "none";
}

// Runs argv[2:], then writes the largest waited-for child's ru_maxrss (KiB on Linux) to argv[1]; exits as it did.
const PY_WRAPPER = [
  "import resource, subprocess, sys",
  "r = subprocess.run(sys.argv[2:])",
  "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))",
  "sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)",
].join("\n");

/** The last whole number in a file (GNU time writes "Command exited with non-zero status 1" before it). */
function lastNumber(file: string): number | null {
  if (!existsSync(file)) return null;
  const numbers = readFileSync(file, "utf8").match(/\d+/g);
  rmSync(file, { force: true });
  return numbers ? Number(numbers.at(-1)) : null;
}

/** VmHWM of a process and its descendants, in KiB: the largest. */
function treeHighWater(pid: number): number {
  let best = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) best = Math.max(best, Number(m[1]));
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim();
      if (children) stack.push(...children.split(/\s+/).map(Number));
    } catch { /* gone meanwhile */ }
  }
  return best;
}

let current: ChildProcess | null = null;
process.once("SIGINT", () => {
  // The command runs in its own process group: end it (and its worker) with the walk.
  if (current?.pid) try { process.kill(-current.pid, "SIGKILL"); } catch { /* gone */ }
  process.exit(130);
});

/** Runs `argv` (in its own process group, killed whole at the limit) and measures it with `method`. */
export function measure(argv: string[], options: { method: RssMethod; timeoutMs: number; scratch: string; cwd?: string }): Promise<Measured> {
  const out = join(options.scratch, `rss-${process.pid}-${Date.now()}`);
  const [cmd, ...args] =
    options.method === "gnu-time" ? ["/usr/bin/time", "-f", "%M", "-o", out, ...argv]
    : options.method === "python-rusage" ? ["python3", "-c", PY_WRAPPER, out, ...argv]
    : argv;
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(cmd!, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], cwd: options.cwd });
    current = child;
    let stdout = "", stderr = "", timedOut = false, polled = 0;
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const poll = existsSync("/proc/self/status") ? setInterval(() => (polled = Math.max(polled, treeHighWater(child.pid!))), 50) : null;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ }
    }, options.timeoutMs);
    child.once("close", (code, signal) => {
      const ms = performance.now() - start;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      current = null;
      const waited = options.method === "gnu-time" || options.method === "python-rusage" ? lastNumber(out) : null;
      const peakKiB = Math.max(waited ?? 0, polled) || null;
      resolve({ code, signal, timedOut, stdout, stderr, ms, peakKiB });
    });
  });
}
