/**
 * Run by chatTemplate.test.ts in its own process, so a template that hangs or aborts the process (as these did)
 * fails the test instead of taking the runner with it: makes the chat prompt format of a small tokenizer whose
 * chat template is one of the hostile ones below, and prints how long it took, the resident-memory growth
 * (/proc/self/status VmHWM after a reset through clear_refs) and the refusal.
 * argv: <"hang" | "range" | "literal" | "loop">
 */
import { readFileSync, writeFileSync } from "node:fs";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";

// A usable template after the hostile part: without the limits the format would be made, slowly or never.
const usable = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}</s>{% else %}{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
const hostile: Record<string, string> = {
  // The three: a nested loop of 1e5 × 1e5, range(1e9), 5 MB of literal text.
  hang: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
  range: "{% for i in range(1000000000) %}{% endfor %}",
  literal: "x".repeat(5_000_000),
  // Loops within every size limit that would run for minutes: the deadline stops them.
  loop: "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
};
const kind = process.argv[2]!;
const files = trainBpe(["Tom has 3 apples and buys 2 more. How many apples does he have?", "He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5"], { vocabSize: 300 });
const withTemplate = (template: string) => tokenizerFromFiles({ tokenizer: files.tokenizer, config: { ...files.config, chat_template: template } });
const tokenizer = withTemplate(hostile[kind] + usable);
const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
promptFormatFor(withTemplate(usable), "chat", "m").encodePrompt("What is 2 + 2?"); // warms the code paths
(globalThis as { gc?: () => void }).gc?.();
writeFileSync("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
const before = kb("VmRSS");
const start = performance.now();
let refused: string | null = null;
try {
  promptFormatFor(tokenizer, "chat", "m").encodePrompt("What is 2 + 2?");
} catch (e) {
  refused = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
console.log(JSON.stringify({ ms: performance.now() - start, growth: kb("VmHWM") - before, refused }));
