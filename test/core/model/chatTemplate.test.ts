// Chat templates run with limits (src/core/model/chatTemplate.ts): hostile templates are refused quickly, in
// little memory, naming the template's file and line; real templates render exactly as the library renders them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { CHAT_TEMPLATE_LIMITS, ChatTemplate, type ChatMessage } from "../../../src/core/model/chatTemplate";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { loadTokenizer, saveTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { repoRoot, tempDir } from "../../helpers/paths";
import { pretrainedTokenizer } from "../tokenizer/pretrainedTokenizers";

const budgetMs = CHAT_TEMPLATE_LIMITS.renderMs;
const FIX = /; fix or remove the chat template, or set model\.promptFormat to "plain"$/;

/** The child's report on one hostile template (chatTemplatePeak.child.ts), from a process of its own. */
function hostile(kind: string): { ms: number; growth: number; refused: string | null } {
  const r = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", join(repoRoot, "test/core/model/chatTemplatePeak.child.ts"), kind], { cwd: repoRoot, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `${kind}: the process ${r.signal ? `was ended by ${r.signal}` : `exited with ${r.status}`} (${r.error?.message ?? r.stderr.slice(-400)})`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { ms: number; growth: number; refused: string | null };
}

test("the issue's hostile templates (1e5 × 1e5 loop, range(1e9), 5 MB of text) are refused at once, naming the template, in little memory", () => {
  for (const [kind, reason] of [
    ["hang", /, line 1 \(\{% for i in range\(100000\) %\}\): range\(100000\) has 100,000 items, over the limit of 10,000/],
    ["range", /, line 1 \(\{% for i in range\(1000000000\) %\}\): range\(1000000000\) has 1,000,000,000 items, over the limit of 10,000/],
    ["literal", /: the template is 5,000,\d{3} characters, over the limit of 200,000/],
  ] as const) {
    const r = hostile(kind);
    assert.ok(r.refused !== null, `${kind}: accepted`);
    assert.match(r.refused, /^ChatTemplateError: m\/tokenizer_config\.json chat_template/, kind);
    assert.match(r.refused, reason, kind);
    assert.match(r.refused, FIX, kind);
    assert.ok(r.ms < budgetMs + 1000, `${kind}: refused after ${Math.round(r.ms)} ms`);
    assert.ok(r.growth < 300 * 2 ** 20, `${kind}: memory grew by ${Math.round(r.growth / 2 ** 20)} MB`);
  }
});

test("a loop within every size limit is stopped at the deadline, naming its line", () => {
  const r = hostile("loop");
  assert.ok(r.refused !== null, "accepted");
  assert.match(r.refused, /m\/tokenizer_config\.json chat_template, line 1 \(\{% for j in range\(10000\) %\}\): rendering one question took over 2 s \(a loop too long\?\)/);
  assert.match(r.refused, FIX);
  assert.ok(r.ms >= budgetMs && r.ms < budgetMs + 1000, `stopped after ${Math.round(r.ms)} ms`);
  assert.ok(r.growth < 300 * 2 ** 20, `memory grew by ${Math.round(r.growth / 2 ** 20)} MB`);
});

const messages: ChatMessage[] = [{ role: "user", content: "Q" }];
/** The refusal of a template (labelled T) rendered for one question, and how long the refusal took. */
function refusal(source: string): { message: string; ms: number } {
  const start = performance.now();
  try {
    new ChatTemplate(source, "T", { bos_token: "<s>" }).render(messages, true);
  } catch (e) {
    return { message: e instanceof Error ? e.message : String(e), ms: performance.now() - start };
  }
  assert.fail(`accepted: ${source.slice(0, 80)}`);
}

test("every size limit refuses before the memory is taken: one value, all that one render builds, the built-ins that multiply a size", () => {
  const z = "z".repeat(60_000);
  for (const [source, reason] of [
    // Doubling a text, a list, a namespace's text: each step is small, the 30th is a gigabyte.
    ["{% set s = 'ab' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}", /line 1 \(\{% set s = s ~ s %\}\): made a value of about 1,048,576 characters, over the limit of 1,000,000/],
    ["{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}", /line 1 \(\{% set ns\.a = \[ns\.a, ns\.a\] %\}\): made a value of about [\d,]+ characters, over the limit/],
    ["{% set ns = namespace(x=1) %}{% set ns.me = ns %}{{ ns }}", /line 1 \(\{\{ ns \}\}\): made a value nested too deep/],
    // One step that multiplies: sized before it runs (V8 would allocate up to 1 GB first).
    [`{% set s = '${z}' %}{{ s.replace('', s) }}`, /replace\(\) would make 3,600,120,000 characters, over the limit of 1,000,000/],
    [`{% set s = '${z}' %}{{ s | replace('', s) }}`, /replace\(\) would make 3,600,120,000 characters/],
    [`{% set s = '${z}' %}{{ s.replace('', s, count=-1) }}`, /replace\(\) would make 3,600,120,000 characters/],
    [`{% set s = '${z}' %}{{ s | join(s) }}`, /join\(\) would make 3,600,000,000 characters/],
    [`{% set s = '${"a\\n".repeat(60_000)}' %}{{ s | indent(60000) }}`, /indent\(\) would make [\d,]+ characters/],
    [`{% filter indent(60000) %}${"a\n".repeat(60_000)}{% endfilter %}`, /line 1 \(\{% filter indent\(60000\) %\}\): indent\(\) would make [\d,]+ characters/],
    ["{% set a = [[[[[[1]]]]]] %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c, c] %}{{ d | tojson(indent=100000) }}", /tojson\(\) would make [\d,]+ characters/],
    // Text written over and over, each piece within the limits.
    [`{% set s = '${"z".repeat(150_000)}' %}{% for i in range(10000) %}{% set t = s.upper() %}{% endfor %}`, /built over 50,000,000 characters of text and lists for one question \(a loop too long\?\)/],
    [`{% for i in range(10000) %}${"y".repeat(1000)}{% endfor %}`, /line 1 \(\{% for i in range\(10000\) %\}\): made a value of about 10,000,000 characters/],
    [`{% for i in range(500) %}${"y".repeat(1000)}{% endfor %}`, /^T: rendered 500,00\d characters for one question, over the limit of 100,002;/],
    // The library's first pass is quadratic in a run of blank space (60,000 newlines: 14 s).
    [`${"\n".repeat(60_000)}{{ messages }}`, /holds runs of blank space too long for the template library to read in time \(60,000 spaces or line breaks in a row\)/],
  ] as const) {
    const r = refusal(source);
    assert.match(r.message, /^T[:,]/, source.slice(0, 60));
    assert.match(r.message, reason, source.slice(0, 60));
    assert.match(r.message, FIX, source.slice(0, 60));
    assert.ok(r.ms < 1000, `${source.slice(0, 60)}: refused after ${Math.round(r.ms)} ms`);
  }
  assert.equal(new ChatTemplate("{% for i in range(10000) %}{% endfor %}{{ messages[0].content }}", "T", {}).render(messages, true), "Q", "range up to the limit");
});

test("an error names the template's file and line, and the tag it is in", (t) => {
  const dir = tempDir(t);
  saveTokenizer(trainBpe(["Tom has 3 apples."], { vocabSize: 270 }), dir);
  const failing = "{%- for m in messages %}\n{%- if m.role == 'user' %}\n{{ m.content }}\n{%- elif m.role == 'assistant' %}\n  {{- m.content | frobnicate }}</s>\n{%- endif %}\n{%- endfor %}";
  writeFileSync(join(dir, "chat_template.jinja"), failing);
  assert.throws(() => promptFormatFor(loadTokenizer(dir), "auto", "models/m"), (e: Error) => {
    assert.equal(e.name, "ChatTemplateError");
    assert.equal(e.message, 'models/m/chat_template.jinja, line 5 ({{- m.content | frobnicate }}): Unknown StringValue filter: frobnicate; fix or remove the chat template, or set model.promptFormat to "plain"');
    return true;
  });
  writeFileSync(join(dir, "chat_template.jinja"), "{% for m in messages %}\n{{ m.content }}\n{% if m.role == 'user' %}\nhello {{ m.content | }}\n{% endif %}{% endfor %}");
  assert.throws(() => promptFormatFor(loadTokenizer(dir), "auto", "models/m"), /^ChatTemplateError: models\/m\/chat_template\.jinja, line 4: does not parse \(Unexpected token: CloseExpression\); fix or remove/);
  // {% generation %} tags, which the library drops before reading, do not shift the lines.
  assert.match(refusal("{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}\n{{ nope() }}{% endfor %}").message, /^T, line 2 \(\{\{ nope\(\) \}\}\): Cannot call something that is not a function/);
});

/** Every guarded path of the interpreter, each within the limits: the output must be the library's own. */
const EXERCISED = [
  "{% set s = messages[0].content %}",
  "{{ s.replace('a', 'bb') }}|{{ s | replace('a', 'c', 1) }}|{{ s.replace('a', 'd', count=2) }}|{{ s.replace(*['e', 'E']) }}|",
  "{{ s.split(' ') | join('-') }}|{{ s | join('.') }}|{{ s.split(' ') | join }}|",
  "{{ 'x\\ny\\nz' | indent(2) }}|{{ 'x\\ny' | indent(width=3, first=true) }}|{{ 'x\\ny' | indent }}|",
  "{{ messages | tojson(indent=2) }}|{{ messages | tojson }}|{{ {'b': [1, 2], 'a': 'q'} | tojson(indent=1, sort_keys=true) }}|",
  "{% filter indent(4) %}a\nb{% endfilter %}|{% filter upper %}up{% endfilter %}|",
  "{% set ns = namespace(n=0) %}{% for m in messages if m.role != 'system' %}{% set ns.n = ns.n + 1 %}{{ loop.index }}:{{ m.role }}{% endfor %}{{ ns.n }}|",
  "{% macro f(x, y=2) %}{{ x * y }}{% endmacro %}{{ f(3) }},{{ f(*[1, 5]) }},{{ f(**{'x': 2, 'y': 4}) }}|",
  "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}|",
  "{% set t = messages[-1].content %}{{ t[::-1] }}{{ t[1:4] }}{{ (t ~ t) | length }}{{ bos_token }}",
].join("");

test("real templates (Qwen3, Llama 3) and every guarded built-in render exactly as the library renders them", () => {
  const conversations: ChatMessage[][] = [
    [{ role: "user", content: "Natalia sold clips to 48 of her friends in April. How many clips?" }],
    [{ role: "user", content: "  spaces around  \n" }, { role: "assistant", content: "\n\nIt is <<48/2=24>>24.\n#### 24" }],
    [{ role: "user", content: "Q1" }, { role: "assistant", content: "<think>\nsteps\n</think>\n\nA1" }, { role: "user", content: "Q2" }],
  ];
  const templates: Array<[string, string, Readonly<Record<string, string>>]> = [
    ...(["qwen3", "llama3"] as const).map((name): [string, string, Readonly<Record<string, string>>] => {
      const tk = pretrainedTokenizer(name);
      return [name, tk.chatTemplate!, tk.specialTokenNames];
    }),
    ["exercised", EXERCISED, { bos_token: "<s>" }],
  ];
  for (const [name, source, special] of templates) {
    const bounded = new ChatTemplate(source, name, special);
    const library = new Template(source);
    for (const conversation of [...conversations, [{ role: "user", content: "a banana eaten at ease" } as ChatMessage, { role: "assistant", content: "An answer" } as ChatMessage]]) {
      for (const addGenerationPrompt of [true, false]) {
        const expected = library.render({ messages: conversation, add_generation_prompt: addGenerationPrompt, enable_thinking: false, ...special });
        assert.equal(bounded.render(conversation, addGenerationPrompt), expected, `${name}: ${JSON.stringify(conversation)}`);
      }
    }
  }
});
