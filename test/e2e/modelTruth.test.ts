// Issue 23 from the command line: `model inspect` refuses (exit 1, one line) every folder `score` and the rounds
// would refuse, quickly; bad settings end `round` before a run exists; a worker crash does not invite a rerun.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { selftrainDir } from "../../src/core/selftrain/workspace";
import { RunStore } from "../../src/core/store/runStore";
import { WorkerExited } from "../../src/worker/client";
import { workerExitAdvice } from "../../src/shared/workerExit";
import { runningWarmupPid, tinyWorkspace } from "../helpers/workspace";
import { editJson, tinyModelFolder as modelFolder, withI8, withNaN } from "../helpers/modelFolders";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const skip = existsSync(cli) ? false : "dist/cli.js not built";
/** The CLI, stopped after 60 s: before the fix some of these inputs ran for minutes. */
const run = (...args: string[]) => {
  const start = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000 });
  return { ...r, seconds: (performance.now() - start) / 1000 };
};

test("model inspect exits 1 with one line, in seconds, for every folder score refuses; score refuses them too, NaN weights included", { skip }, (t) => {
  const ids = join(tempDir(t), "ids.jsonl");
  writeFileSync(ids, '{"ids": [1, 17, 40, 99, 5]}\n');
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ["1e9 layers", (d) => editJson(join(d, "config.json"), (o) => (o["num_hidden_layers"] = 1e9)), /config\.json: num_hidden_layers 1000000000 is above the limit of 256$/],
    ["3 layers", (d) => editJson(join(d, "config.json"), (o) => (o["num_hidden_layers"] = 3)), /config\.json: num_hidden_layers is 3, but the weights hold layers 0–1$/],
    ["1e15 positions", (d) => editJson(join(d, "config.json"), (o) => (o["max_position_embeddings"] = 1e15)), /config\.json: max_position_embeddings 1000000000000000 is above the limit of 1,048,576$/],
    ["no model_type", (d) => editJson(join(d, "config.json"), (o) => delete o["model_type"]), /config\.json: no "model_type"/],
    ["chat_template 42", (d) => editJson(join(d, "tokenizer_config.json"), (o) => (o["chat_template"] = 42)), /chat_template is neither a template nor a list/],
    ["empty tokenizer.json", (d) => writeFileSync(join(d, "tokenizer.json"), ""), /tokenizer\.json: not valid JSON/],
    ["NaN weight", withNaN, /model\.safetensors: model\.layers\.1\.mlp\.up_proj\.weight holds NaN at index 123$/],
  ];
  const dirs = new Map<string, string>();
  for (const [what, spoil, message] of cases) {
    const dir = modelFolder(join(tempDir(t), what.replace(/\W+/g, "-")));
    dirs.set(what, dir);
    spoil(dir);
    const r = run("model", "inspect", dir);
    assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message, what);
    assert.ok(r.seconds < 15, `${what}: inspect took ${r.seconds} s`);
    const s = run("model", "score", dir, "--ids", ids);
    assert.equal(s.status, 1, `${what}: score ${s.stdout}${s.stderr}`);
    assert.match(s.stderr.trim(), message, `${what}: score`);
    assert.doesNotMatch(s.stdout, /null/, what);
  }
  // --quick reads headers only: the NaN folder passes it, and loading (score) still refuses it; so does init --model.
  assert.equal(run("model", "inspect", dirs.get("NaN weight")!, "--quick").status, 0);
  const ws = tempDir(t);
  writeFileSync(join(ws, "train.jsonl"), JSON.stringify({ question: "1+1?", answer: "<<1+1=2>>2\n#### 2" }) + "\n");
  const init = run("init", "-w", ws, "--train", join(ws, "train.jsonl"), "--model", dirs.get("NaN weight")!);
  assert.equal(init.status, 1, init.stderr);
  assert.match(init.stderr, /cannot use this model: .*model\.safetensors: model\.layers\.1\.mlp\.up_proj\.weight holds NaN at index 123/);
  assert.ok(!existsSync(join(ws, ".selftrain", "config.json")), "init wrote a config for a folder with a NaN weight");
  const good = modelFolder(join(tempDir(t), "good"));
  const ok = run("model", "inspect", good);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^values {6}all finite \(\d+ KB read in \d+\.\d s\)$/m);
  assert.doesNotMatch(run("model", "inspect", good, "--quick").stdout, /^values/m);
});

test("settings out of range end `round` when config.json is read: exit 1, the file, setting and range named, no run left behind", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const file = join(ws, ".selftrain", "config.json");
  const original = readFileSync(file, "utf8");
  const cases: Array<[string, number, RegExp]> = [
    ["model.layers", 1e6, /config\.json: model\.layers must be between 1 and 256, not 1000000$/],
    ["engine.threads", 100000, /config\.json: engine\.threads must be between 0 and 512, not 100000$/],
    ["sampling.batchSize", 0, /config\.json: sampling\.batchSize must be between 1 and 65,536, not 0$/],
    ["model.maxPositions", 4, /config\.json: model\.maxPositions must be between 8 and 1,048,576, not 4$/],
  ];
  for (const [path, value, message] of cases) {
    const [group, key] = path.split(".") as [string, string];
    editJson(file, (o) => ((o[group] as Record<string, unknown>)[key] = value));
    const r = run("round", "-w", ws);
    assert.equal(r.status, 1, `${path}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message, path);
    assert.doesNotMatch(r.stderr, /run the same command again/, path);
    assert.ok(r.seconds < 15, `${path}: ${r.seconds} s`);
    assert.ok(!existsSync(join(selftrainDir(ws), "runs")) || readdirSync(join(selftrainDir(ws), "runs")).length === 0, `${path}: a run was created`);
    writeFileSync(file, original);
  }
});

test("`round` on a model folder that loading refuses (NaN weights, I8 weights) ends before any run is created, naming config.json's model.init", { skip }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const file = join(ws, ".selftrain", "config.json");
  // Every entry of runs/, not only complete runs: a folder begun and left is a run created too.
  const runs = (): string[] => (existsSync(join(selftrainDir(ws), "runs")) ? readdirSync(join(selftrainDir(ws), "runs")).sort() : []);
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ["NaN weight", withNaN, /model\.safetensors: model\.layers\.1\.mlp\.up_proj\.weight holds NaN at index 123/],
    ["I8 weight", withI8, /model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.weight is I8, not a floating-point type/],
  ];
  for (const [what, spoil, reason] of cases) {
    const dir = modelFolder(join(tempDir(t), what.replace(/\W+/g, "-")));
    spoil(dir);
    // The tiny workspace's learning rates are a new model's: allowed on purpose, so that only the folder is wrong.
    editJson(file, (o) => (o["model"] = { ...(o["model"] as object), init: dir, allowHighLearningRate: true }));
    for (const args of [[], ["--new-run"]]) {
      const before = runs();
      const r = run("round", "-w", ws, ...args);
      assert.equal(r.status, 1, `${what} ${args}: ${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.includes(`config.json: model.init ${JSON.stringify(dir)} cannot be used, so no run was started: `), r.stderr);
      assert.match(r.stderr, reason, what);
      assert.match(r.stderr, /fix the folder or set model\.init to another; selftrain model inspect DIR checks a folder/, what);
      assert.doesNotMatch(r.stderr, /warmup: running|run the same command again/, what);
      assert.ok(r.seconds < 15, `${what}: ${r.seconds} s`);
      assert.deepEqual(runs(), before, `${what} ${args}: a run was created`);
      assert.ok(!existsSync(join(selftrainDir(ws), "runs.lock")), `${what}: the workspace lock was left`);
    }
    // A run that exists already (its warm-up never made the base model) is not resumed into the folder either.
    if (runs().length === 0) await RunStore.create(selftrainDir(ws), { mode: "dpo-st" });
  }
  assert.equal(runs().length, 1);
});

test("a worker that crashes (SIGABRT) is not followed by \"run the same command again to resume\"; a kill still is", { skip: skip || (process.platform === "win32" ? "signals" : false) }, async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  // No core file from the abort: the limit is set for the CLI and inherited by its worker.
  const child = spawn("/bin/sh", ["-c", 'ulimit -c 0; exec "$0" "$@"', process.execPath, cli, "round", "-w", ws, "--round", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const enginePid = await runningWarmupPid(ws);
  assert.ok(enginePid !== undefined, "the warm-up started");
  process.kill(enginePid, "SIGABRT");
  assert.equal(await exited, 1);
  assert.match(stderr, /worker process stopped \(code null, signal SIGABRT\): the worker process crashed\..*the same settings would crash it again: check the engine settings/);
  assert.doesNotMatch(stderr, /run the same command again to resume/);

  // How each end reads, without a process: kills resume, crashes (a signal of its own, an exit code) do not.
  assert.match(workerExitAdvice(new WorkerExited(null, "SIGKILL")), /killed \(by the system when memory ran out, or by hand\)\. Finished stages are kept; run the same command again to resume/);
  assert.match(workerExitAdvice(new WorkerExited(null, "SIGTERM")), /stopped from outside\. .*run the same command again to resume/);
  const crashed = workerExitAdvice(new WorkerExited(134, null, "warming up\nterminate called after throwing an instance of 'std::system_error'\n  what():  Resource temporarily unavailable\n"));
  assert.match(crashed, /crashed\. Its last output: warming up \/ terminate called after throwing an instance of 'std::system_error' \/ what\(\): {2}Resource temporarily unavailable\./);
  assert.doesNotMatch(crashed, /run the same command again to resume/);
});
