import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { encodeSequence, formatPrompt, promptFormatFor } from "../../../src/core/model/promptFormat";
import { makeBatch } from "../../../src/core/train/batching";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { loadTokenizer, saveTokenizer, tokenizerFromFiles, type TextTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { generateSyntheticTask } from "../../../src/core/data/synthetic";
import { parseConfig } from "../../../src/core/selftrain/config";
import { gsm8kDir, GSM8K_ABSENT, tempDir } from "../../helpers/paths";
import { gsm8kRecords, pretrainedTokenizer } from "../tokenizer/pretrainedTokenizers";

const QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
const RATIONALE = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72";

const bpeFiles = trainBpe(generateSyntheticTask({ seed: 1, count: 300 }).flatMap((e) => [e.question, e.rationale]), { vocabSize: 400 });

/** Our own small tokenizer (<pad> <s> </s>), with a chat template when given one. */
function bpe(chatTemplate?: string): TextTokenizer {
  return tokenizerFromFiles({ tokenizer: bpeFiles.tokenizer, config: { ...bpeFiles.config, ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }) } });
}

/** The completion targets a batch trains on: the targets where the loss mask is 1. */
function maskedTargets(ids: number[], promptLength: number): number[] {
  const b = makeBatch([{ ids, promptLength }], 0, 100_000);
  return Array.from(b.targets).filter((_, i) => b.mask[i] === 1);
}

test("Qwen3's chat prompt is its template's, as the model card shows with thinking off", () => {
  const tk = pretrainedTokenizer("qwen3");
  const f = promptFormatFor(tk, "auto");
  assert.equal(f.kind, "chat");
  const text = f.promptText(QUESTION);
  assert.equal(text, `<|im_start|>user\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`);
  const ids = f.encodePrompt(QUESTION);
  assert.deepEqual(ids, [151_644, ...tk.encode("user\n" + QUESTION), 151_645, ...tk.encode("\n"), 151_644, ...tk.encode("assistant\n<think>\n\n</think>\n\n")]);
  assert.deepEqual(f.stopIds, [151_645], "<|im_end|> ends the turn and is Qwen3 instruct's EOS");
});

test("Llama 3's chat prompt is its template's: BOS once, user and assistant headers", () => {
  const tk = pretrainedTokenizer("llama3");
  const f = promptFormatFor(tk, "auto");
  assert.equal(f.kind, "chat");
  assert.equal(f.promptText(QUESTION), `<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n${QUESTION}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`);
  const ids = f.encodePrompt(QUESTION);
  assert.equal(ids[0], 128_000);
  assert.equal(ids.filter((id) => id === 128_000).length, 1, "the template writes the BOS; the format adds none");
  // Special tokens split the text; each piece between them is encoded on its own.
  assert.deepEqual(ids, [128_000, 128_006, ...tk.encode("user"), 128_007, ...tk.encode(`\n\n${QUESTION}`), 128_009, 128_006, ...tk.encode("assistant"), 128_007, ...tk.encode("\n\n")]);
  assert.deepEqual(f.stopIds, [128_009, 128_001], "<|eot_id|> ends the turn, <|end_of_text|> the text");
});

test("a chat sequence is prompt + rationale + end of turn, and the loss covers exactly the rationale and the end-of-turn token", () => {
  for (const [name, eot] of [["qwen3", 151_645], ["llama3", 128_009]] as const) {
    const tk = pretrainedTokenizer(name);
    const f = promptFormatFor(tk, "chat");
    const s = f.encodeSequence(QUESTION, RATIONALE);
    assert.equal(s.promptLength, f.encodePrompt(QUESTION).length, name);
    assert.deepEqual(s.ids.slice(0, s.promptLength), f.encodePrompt(QUESTION), name);
    assert.deepEqual(maskedTargets(s.ids, s.promptLength), [...tk.encode(RATIONALE), eot], name);
    assert.equal(tk.decode(s.ids.slice(s.promptLength)), RATIONALE, name);
  }
});

test("chat sequences agree token for token with the whole conversation as the template renders and the tokenizer encodes it", { skip: gsm8kDir() ? false : GSM8K_ABSENT }, () => {
  const examples = gsm8kRecords(gsm8kDir()!, "test").slice(0, 300);
  for (const [name, eotText] of [["qwen3", "<|im_end|>"], ["llama3", "<|eot_id|>"]] as const) {
    const tk = pretrainedTokenizer(name);
    const f = promptFormatFor(tk, "chat");
    // The reference: the library's own render of [user, assistant], encoded in one piece (as transformers'
    // apply_chat_template(tokenize=True) does), up to the end-of-turn token.
    const template = new Template(tk.chatTemplate!);
    for (const e of examples) {
      const full = template.render({ messages: [{ role: "user", content: e.question }, { role: "assistant", content: e.answer }], add_generation_prompt: false, enable_thinking: false, ...tk.specialTokenNames });
      const turn = full.slice(0, full.indexOf(eotText, full.indexOf(e.answer)) + eotText.length);
      assert.deepEqual(f.encodeSequence(e.question, e.answer).ids, tk.encode(turn), `${name}: ${e.question}`);
    }
  }
});

test("the plain format is unchanged for a model without a chat template: BOS, Question/Answer, rationale, EOS", () => {
  const tk = bpe();
  assert.equal(tk.chatTemplate, null);
  for (const setting of ["auto", "plain"] as const) {
    const f = promptFormatFor(tk, setting);
    assert.equal(f.kind, "plain");
    assert.equal(f.promptText(QUESTION), `Question: ${QUESTION}\nAnswer: `);
    assert.equal(formatPrompt(QUESTION), `Question: ${QUESTION}\nAnswer: `);
    const prompt = [tk.bosId!, ...tk.encode(`Question: ${QUESTION}\nAnswer: `)];
    assert.deepEqual(f.encodePrompt(QUESTION), prompt);
    assert.deepEqual(f.encodeSequence(QUESTION, RATIONALE), { ids: [...prompt, ...tk.encode(RATIONALE), tk.eosId], promptLength: prompt.length });
    assert.deepEqual(encodeSequence(tk, QUESTION, RATIONALE), f.encodeSequence(QUESTION, RATIONALE));
    assert.deepEqual(f.stopIds, [tk.eosId]);
  }
});

test('model.promptFormat "plain" keeps the plain format for a model with a template; a Qwen prompt then has no BOS', () => {
  const tk = pretrainedTokenizer("qwen3");
  const f = promptFormatFor(tk, "plain");
  assert.equal(f.kind, "plain");
  assert.deepEqual(f.encodePrompt(QUESTION), tk.encode(`Question: ${QUESTION}\nAnswer: `));
  assert.deepEqual(maskedTargets(f.encodeSequence(QUESTION, RATIONALE).ids, f.encodePrompt(QUESTION).length), [...tk.encode(RATIONALE), tk.eosId]);
});

test('model.promptFormat "chat" without a chat template is an error naming the setting', () => {
  assert.throws(() => promptFormatFor(bpe(), "chat", "runs/base"), /model\.promptFormat is "chat", but runs\/base has no chat template.*"auto" or "plain"/);
  assert.equal(parseConfig({}).model.promptFormat, "auto");
  assert.equal(parseConfig({ model: { init: "models/qwen3", promptFormat: "chat" } }).model.promptFormat, "chat");
  assert.throws(() => parseConfig({ model: { promptFormat: "chat" } }), /model\.promptFormat is "chat", but a new model .* has no chat template/);
  assert.throws(() => parseConfig({ model: { promptFormat: "chatml" } }), /model\.promptFormat must be one of "auto", "plain", "chat"/);
});

test("a template the rationale cannot follow token for token is refused, pointing at the plain format", () => {
  const turns = "{% for m in messages %}<s>{{ m.role }}: {{ m.content }}</s>{% endfor %}";
  // No generation prompt: the assistant's header comes between the prompt and the answer.
  assert.throws(() => promptFormatFor(bpe(turns), "auto", "m"), /m\/tokenizer_config\.json chat_template: writes "<s>assistant: " between the generation prompt and the answer.*"plain"/);
  // A generation prompt other than the assistant turn's opening.
  assert.throws(() => promptFormatFor(bpe(`${turns}{% if add_generation_prompt %}<s>assistant:\n{% endif %}`), "auto", "m"), /does not begin with its generation prompt/);
  // That template with a matching generation prompt is fine.
  assert.equal(promptFormatFor(bpe(`${turns}{% if add_generation_prompt %}<s>assistant: {% endif %}`), "auto").promptText("Q"), "<s>user: Q</s><s>assistant: ");
  // No special token after the answer.
  assert.throws(() => promptFormatFor(bpe("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"), "auto", "m"), /ends the assistant's turn with no special token/);
  assert.throws(() => promptFormatFor(bpe("{% if %}"), "auto", "m"), /m\/tokenizer_config\.json chat_template, line 1: does not parse \(Unexpected token: CloseStatement\)/);
  assert.throws(() => promptFormatFor(bpe("{{ raise_exception('only system') }}"), "auto", "m"), /m\/tokenizer_config\.json chat_template, line 1 \(\{\{ raise_exception\('only system'\) \}\}\): refused the conversation: only system/);
  // A usable one: the answer right after the prompt, then the special </s>.
  const ok = promptFormatFor(bpe("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}</s>{% else %}{{ '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"), "auto");
  assert.equal(ok.promptText("1+1?"), "<s>user: 1+1?\nassistant: ");
  assert.deepEqual(ok.stopIds, [2]);
});

test("templates that print today's date see a pinned one, so a prompt is the same on every day", () => {
  const t = bpe(`<s>Today Date: {{ strftime_now("%d %b %Y") }} ({{ strftime_now("%Y-%m-%d %B") }})\n{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}</s>{% endif %}{% endfor %}`);
  assert.equal(promptFormatFor(t, "chat").promptText("Q"), "<s>Today Date: 26 Jul 2024 (2024-07-26 July)\nQ");
});

test("loadTokenizer reads chat_template.jinja beside tokenizer.json, and a saved tokenizer keeps the template", (t) => {
  const dir = tempDir(t);
  saveTokenizer(bpeFiles, dir);
  assert.equal(loadTokenizer(dir).chatTemplate, null);
  const template = "{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}</s>{% endif %}{% endfor %}";
  writeFileSync(join(dir, "chat_template.jinja"), template);
  const tk = loadTokenizer(dir);
  assert.equal(tk.chatTemplate, template);
  const saved = tempDir(t);
  saveTokenizer(tk.files, saved);
  assert.equal((JSON.parse(readFileSync(join(saved, "tokenizer_config.json"), "utf8")) as { chat_template: string }).chat_template, template);
  assert.equal(loadTokenizer(saved).chatTemplate, template);
});
