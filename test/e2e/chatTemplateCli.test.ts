// `selftrain model inspect` and `init --model` check a model folder's chat template (a sample question rendered
// within the template limits) and refuse a hostile one with exit 1, naming its file, instead of hanging or
// crashing a round later.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint } from "../../src/core/model/checkpoint";
import { tinyConfig } from "../../src/core/model/config";
import { initWeights } from "../../src/core/model/weights";
import { trainBpe } from "../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../src/core/tokenizer/tokenizer";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const skip = existsSync(cli) ? false : "dist/cli.js not built";
/** The CLI, timed; a hang before the limits existed ends at the timeout (status null). */
function run(...args: string[]): { status: number | null; stdout: string; stderr: string; ms: number } {
  const start = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - start };
}

const tokenizer = tokenizerFromFiles(trainBpe(["Mia has 3 apples. 3+4 = <<3+4=7>>7\n#### 7", "Tom buys 12 pens for 2 dollars each."], { vocabSize: 280 }));
const config = tinyConfig(tokenizer.vocabSize, { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64 });
const USABLE = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}</s>{% else %}{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";

/** A model folder whose chat template (chat_template.jinja, as newer transformers save it) is `template`. */
function modelFolder(dir: string, template: string): string {
  saveCheckpoint(dir, { config, weights: initWeights(config, 5, 0.3), tokenizer });
  writeFileSync(join(dir, "chat_template.jinja"), template);
  return dir;
}

test("model inspect and init --model refuse a hostile chat template at once, naming its file; a usable one passes", { skip }, (t) => {
  const root = tempDir(t);
  const data = join(root, "train.jsonl");
  writeFileSync(data, JSON.stringify({ question: "Mia has 3 apples and buys 4. How many?", answer: "3+4 = <<3+4=7>>7\n#### 7" }) + "\n");
  for (const [kind, template, reason] of [
    ["1e5 × 1e5 loop", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", /line 1 \(\{% for i in range\(100000\) %\}\): range\(100000\) has 100,000 items, over the limit of 10,000/],
    ["range(1e9)", "{% for i in range(1000000000) %}{% endfor %}", /line 1 \(\{% for i in range\(1000000000\) %\}\): range\(1000000000\) has 1,000,000,000 items/],
    ["5 MB of text", "x".repeat(5_000_000), /: the template is 5,000,\d{3} characters, over the limit of 200,000/],
    ["a loop past the deadline", "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", /: rendering one question took over 2 s \(a loop too long\?\)/],
  ] as const) {
    const dir = modelFolder(join(root, kind.replace(/\W+/g, "-")), template + USABLE);
    const r = run("model", "inspect", dir);
    assert.equal(r.status, 1, `${kind}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${kind}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`selftrain: cannot use this model: ${dir}/chat_template.jinja`), `${kind}: ${r.stderr}`);
    assert.match(r.stderr, reason, kind);
    assert.match(r.stderr, /fix or remove the chat template, or set model\.promptFormat to "plain"$/m, kind);
    assert.doesNotMatch(r.stderr, /resume/, kind);
    // The CLI starts (a second or more on a busy machine), and the template is refused within its 2 s budget.
    assert.ok(r.ms < 30_000, `${kind}: ${Math.round(r.ms)} ms`);
    const ws = join(root, `ws-${kind.replace(/\W+/g, "-")}`);
    mkdirSync(ws);
    const init = run("init", "--train", data, "--model", dir, "-w", ws);
    assert.equal(init.status, 1, `${kind}: init: ${init.stderr}`);
    assert.match(init.stderr, reason, `${kind}: init`);
    assert.equal(existsSync(join(ws, ".selftrain", "config.json")), false, `${kind}: init wrote a config`);
  }
  const usable = modelFolder(join(root, "usable"), USABLE);
  const ok = run("model", "inspect", usable);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^chat {8}has a chat template/m);
});

test("model inspect in a workspace whose prompts are plain does not render the model's chat template", { skip }, (t) => {
  const root = tempDir(t);
  const dir = modelFolder(join(root, "m"), "{% for i in range(1000000000) %}{% endfor %}" + USABLE);
  const ws = join(root, "ws");
  mkdirSync(join(ws, ".selftrain"), { recursive: true });
  writeFileSync(join(ws, ".selftrain", "config.json"), JSON.stringify({ model: { init: dir, promptFormat: "plain" } }));
  const plain = run("model", "inspect", dir, "-w", ws);
  assert.equal(plain.status, 0, plain.stderr);
  writeFileSync(join(ws, ".selftrain", "config.json"), JSON.stringify({ model: { init: dir, promptFormat: "auto" } }));
  const auto = run("model", "inspect", dir, "-w", ws);
  assert.equal(auto.status, 1, auto.stderr);
  assert.match(auto.stderr, /range\(1000000000\) has 1,000,000,000 items/);
});
