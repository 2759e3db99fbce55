// Issue 23's walk, reproducible: hostile or careless inputs (model folders, chat templates, settings, locks, torn
// files) built in a temporary folder from the tests' own writers, each given to the CLI command a user would run
// on it, with a time limit. Prints a markdown table: input | command | exit code | first line of the message |
// wall time | peak RSS (the largest process: the CLI or its worker).
//
//   npm run walk:hostile [-- --keep] [--timeout 60] [--rss gnu-time|python-rusage|proc-vmhwm]
//
// Runs dist/cli.js as built (npm run walk:hostile builds first). Tiny models throughout: about 15 s on 2 cores.
// --keep leaves the inputs in the temporary folder (its path is printed) to try them again by hand; --rss picks how
// peak memory is measured instead of the best this machine offers (scripts/walks/measure.ts).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RunStore } from "../../src/core/store/runStore";
import { ReviewLog } from "../../src/core/store/reviewLog";
import { lockPath, workspaceLockPath } from "../../src/core/store/runLock";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { tinyWorkspace } from "../../test/helpers/workspace";
import { editJson, tinyModelFolder, withExtraTensor, withI8, withNaN } from "../../test/helpers/modelFolders";
import { repoRoot } from "../../test/helpers/paths";
import { describeRssMethod, measure, rssMethod, type Measured, type RssMethod } from "./measure";

const { values: flags } = parseArgs({ options: { keep: { type: "boolean" }, timeout: { type: "string" }, rss: { type: "string" } } });
const TIMEOUT_MS = Number(flags.timeout ?? 60) * 1000;
const cli = join(repoRoot, "dist", "cli.js");
if (!existsSync(cli)) {
  process.stderr.write(`${cli}: not built; run npm run build (or npm run walk:hostile, which builds first)\n`);
  process.exit(1);
}

const root = mkdtempSync(join(tmpdir(), "hostile-"));
const models = join(root, "models");
mkdirSync(models);

/** A chat template the rounds can train with, after a hostile part that runs first. */
const USABLE = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}</s>{% else %}{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";

/** A tiny model folder spoiled by `spoil`. */
function folder(name: string, spoil: (dir: string) => void): string {
  const dir = tinyModelFolder(join(models, name));
  spoil(dir);
  return dir;
}
const config = (key: string, value: unknown) => (d: string) => editJson(join(d, "config.json"), (o) => (o[key] = value));
const template = (text: string) => (d: string) => writeFileSync(join(d, "chat_template.jinja"), text + USABLE);

/** A tiny workspace (a new model unless `init` names a folder) with its settings changed by `change`. */
async function workspace(name: string, change: (c: Record<string, Record<string, unknown>>) => void = () => undefined): Promise<string> {
  const ws = await tinyWorkspace(join(root, "ws", name));
  editJson(join(selftrainDir(ws), "config.json"), (o) => change(o as Record<string, Record<string, unknown>>));
  return ws;
}
/** model.init a folder; the tiny workspace's high learning rates allowed on purpose, so only the folder is wrong. */
const fromFolder = (dir: string) => (c: Record<string, Record<string, unknown>>) => (c["model"] = { ...c["model"], init: dir, allowHighLearningRate: true });
const setting = (path: string, value: unknown) => (c: Record<string, Record<string, unknown>>) => {
  const [group, key] = path.split(".") as [string, string];
  c[group] = { ...c[group], [key]: value };
};

/** A run `r1` whose warm-up a process on another machine (a container since recreated) was running. */
async function foreignLock(ws: string): Promise<void> {
  const store = await RunStore.create(selftrainDir(ws), { runId: "r1", mode: "dpo-st" });
  await store.setStage(0, "warmup", { state: "running" });
  await store.setStage(0, "warmup", { pid: 4242, host: "old-container-1" });
  writeFileSync(lockPath(store.dir), JSON.stringify({ pid: 4242, host: "old-container-1", startedAt: "2026-01-02T03:04:05.000Z" }) + "\n");
}

interface Case {
  input: string;
  /** The CLI's arguments. */
  args: string[];
  /** Which line to show: the first matching one (stderr, then stdout); by default the first line of stderr, else of stdout. */
  line?: RegExp;
}

async function cases(): Promise<Case[]> {
  const inspect = (input: string, dir: string): Case => ({ input, args: ["model", "inspect", dir] });
  const out: Case[] = [
    inspect("config.json num_hidden_layers 1e9", folder("layers-1e9", config("num_hidden_layers", 1e9))),
    inspect("config.json max_position_embeddings 1e12", folder("positions-1e12", config("max_position_embeddings", 1e12))),
    inspect("config.json hidden_size 0", folder("hidden-0", config("hidden_size", 0))),
    inspect("config.json without model_type", folder("no-model-type", (d) => editJson(join(d, "config.json"), (o) => delete o["model_type"]))),
    inspect("tokenizer.json not JSON", folder("tokenizer-garbage", (d) => writeFileSync(join(d, "tokenizer.json"), "garbage{\n"))),
    inspect("tokenizer.json empty", folder("tokenizer-empty", (d) => writeFileSync(join(d, "tokenizer.json"), ""))),
    inspect("tokenizer.json not a tokenizer", folder("tokenizer-other", (d) => writeFileSync(join(d, "tokenizer.json"), '{"not": "a tokenizer"}'))),
    inspect("I8 weights", folder("i8", withI8)),
    inspect("an extra tensor", folder("extra-tensor", withExtraTensor)),
    inspect("chat_template 42", folder("template-42", (d) => editJson(join(d, "tokenizer_config.json"), (o) => (o["chat_template"] = 42)))),
    inspect("chat template: nested loop 1e5 × 1e5", folder("template-nested", template("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))),
    inspect("chat template: range(1e9)", folder("template-range", template("{% for i in range(1000000000) %}{% endfor %}"))),
    inspect("chat template: 5 MB of literal text", folder("template-5mb", template("x".repeat(5_000_000)))),
  ];
  const nan = folder("nan", withNaN);
  const ids = join(root, "ids.jsonl");
  writeFileSync(ids, '{"ids": [1, 17, 40, 99, 5]}\n');
  out.push(
    inspect("NaN weight", nan),
    { input: "NaN weight", args: ["model", "score", nan, "--ids", ids] },
    { input: "NaN weight as model.init", args: ["round", "-w", await workspace("nan", fromFolder(nan))] },
    { input: "range(1e9) template as model.init", args: ["round", "-w", await workspace("template-range", fromFolder(join(models, "template-range")))] },
  );
  for (const [path, value] of [
    ["model.layers", 1e6], ["engine.threads", 100000], ["sampling.batchSize", 0], ["model.hiddenSize", 0],
    ["model.vocabSize", 0], ["model.maxPositions", 4], ["data.devSize", 1e9], ["eval.passSamples", -1],
  ] as const) {
    out.push({ input: `settings ${path} ${value}`, args: ["round", "-w", await workspace(`${path}-${value}`, setting(path, value))] });
  }
  const foreign = await workspace("foreign-lock");
  await foreignLock(foreign);
  out.push(
    { input: "a lock from another host", args: ["round", "-w", foreign] },
    { input: "a lock from another host", args: ["status", "-w", foreign], line: /locked by|lock/ },
    { input: "a lock from another host", args: ["unlock", "-w", foreign] },
  );
  const torn = await workspace("torn-reviews");
  const reviews = new ReviewLog(selftrainDir(torn));
  reviews.append({ kind: "mark", verdict: "wrong", hash: "h1" });
  appendFileSync(reviews.path, '{"kind":"exclude-sample","hash":"feedc0ffee1234","id":"x","at":"2026-03-04T05:06:07.000Z"');
  out.push(
    { input: "reviews.jsonl with a torn last line", args: ["status", "-w", torn], line: /^reviews:/ },
    { input: "reviews.jsonl with a torn last line", args: ["warmup", "-w", torn], line: /review decision|reviews\.jsonl/ },
  );
  const folderLock = await workspace("runs-lock-folder");
  mkdirSync(workspaceLockPath(selftrainDir(folderLock)), { recursive: true });
  const runLockFolder = await workspace("run-lock-folder");
  const r1 = await RunStore.create(selftrainDir(runLockFolder), { runId: "r1", mode: "dpo-st" });
  mkdirSync(lockPath(r1.dir));
  out.push(
    { input: ".selftrain/runs.lock is a folder", args: ["round", "-w", folderLock] },
    { input: "runs/r1/lock is a folder", args: ["status", "-w", runLockFolder], line: /lock/ },
    { input: "runs/r1/lock is a folder", args: ["round", "-w", runLockFolder] },
  );
  return out;
}

/** The line the table shows, the temporary folder written as $TMP, short enough for a table cell. */
function shownLine(c: Case, m: Measured): string {
  const lines = (text: string) => text.split("\n").map((l) => l.trim()).filter((l) => l);
  const all = [...lines(m.stderr), ...lines(m.stdout)];
  const chosen = (c.line && all.find((l) => c.line!.test(l))) ?? lines(m.stderr)[0] ?? lines(m.stdout)[0] ?? "";
  const text = chosen.split(root).join("$TMP");
  return (text.length > 220 ? `${text.slice(0, 219)}…` : text).replace(/\|/g, "\\|");
}

function exitShown(m: Measured): string {
  if (m.timedOut) return `killed at ${TIMEOUT_MS / 1000} s`;
  return m.signal ? m.signal : String(m.code);
}

async function main(): Promise<void> {
  const method = (flags.rss as RssMethod | undefined) ?? rssMethod();
  const start = performance.now();
  const all = await cases();
  console.log(`# hostile inputs: ${all.length} commands on dist/cli.js (inputs in $TMP = ${root}; limit ${TIMEOUT_MS / 1000} s each; peak RSS: the largest process, CLI or worker, by ${describeRssMethod(method)})\n`);
  console.log("| input | command | exit code | first line of the message | wall time | peak RSS |");
  console.log("|---|---|---|---|---|---|");
  for (const c of all) {
    const m = await measure([process.execPath, cli, ...c.args], { method, timeoutMs: TIMEOUT_MS, scratch: root });
    const command = `selftrain ${c.args.map((a) => a.split(root).join("$TMP")).join(" ")}`;
    const rss = m.peakKiB === null ? "—" : `${Math.round(m.peakKiB / 1024)} MB`;
    console.log(`| ${c.input} | \`${command}\` | ${exitShown(m)} | ${shownLine(c, m)} | ${(m.ms / 1000).toFixed(1)} s | ${rss} |`);
  }
  console.log(`\n${all.length} commands in ${((performance.now() - start) / 1000).toFixed(0)} s${flags.keep ? `; inputs kept in ${root}` : ""}`);
  if (!flags.keep) rmSync(root, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`walk:hostile: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  if (!flags.keep) rmSync(root, { recursive: true, force: true });
  process.exit(1);
});
