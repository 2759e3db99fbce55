// Our tokenizer (src/core/tokenizer: tokenizer.json through @huggingface/tokenizers) against Hugging Face's
// `tokenizers`, the Rust library behind transformers' fast tokenizers (hf_tokenizers.py beside this file, .venv),
// on the same tokenizer.json files and texts: the ids, and both decodes giving the text back. For
// hfTokenizers.test.ts and hfTokenizers.heavy.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../../helpers/paths";
import { runVenvJson } from "../../helpers/venv";
import { loadTokenizer, type TextTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { gsm8kRecords } from "./pretrainedTokenizers";

export interface Texts {
  /** GSM8K questions and answers: each must decode back to itself */
  plain: string[];
  /** the same questions in each tokenizer's chat format: its special tokens inside the text */
  chatQuestions: string[];
}

export function gsm8kTexts(gsm8k: string, splits: ReadonlyArray<"train" | "test">, chatQuestions = 50): Texts {
  const records = splits.flatMap((s) => gsm8kRecords(gsm8k, s));
  return { plain: records.flatMap((r) => [r.question, r.answer]), chatQuestions: records.slice(0, chatQuestions).map((r) => r.question) };
}

export interface Agreement {
  name: string;
  /** GSM8K texts compared, and those whose ids and both decodes agreed */
  texts: number;
  agreed: number;
  tokens: number;
  chars: number;
  chatTexts: number;
  ms: number;
}

/** A text on which we and `tokenizers` differ: the first differing token, or a decode that is not the text. */
export interface Difference {
  name: string;
  text: string;
  what: string;
}

interface HfOut {
  tokenizers: string;
  results: Record<string, { ids: number[][]; decoded: string[] }>;
}

/**
 * The chat texts of one tokenizer: its template's prompt for each question (from our renderer: the input text,
 * whatever renders it) followed by the answer; none without a template.
 */
function chatTexts(tk: TextTokenizer, dir: string, texts: Texts): string[] {
  if (tk.chatTemplate === null) return [];
  const format = promptFormatFor(tk, "chat", dir);
  return texts.chatQuestions.map((q, i) => format.promptText(q) + `Step ${i}: 3+4 = <<3+4=7>>7\n#### 7`);
}

/**
 * Every tokenizer folder (or tokenizer.json) in `files`, loaded by us and by `tokenizers` in one Python run, on
 * every text: plain texts must give the same ids and both decodes the text; chat texts (special tokens inside) the
 * same ids and the same decode. Returns the figures per tokenizer, every text where that fails, and the library's
 * version.
 */
export function compareWithHfTokenizers(files: Record<string, string>, texts: Texts, tmp: string): { version: string; agreements: Agreement[]; differences: Difference[] } {
  const ours = Object.fromEntries(Object.entries(files).map(([name, path]) => [name, loadTokenizer(path)]));
  const chats = Object.fromEntries(Object.entries(ours).map(([name, tk]) => [name, chatTexts(tk, files[name]!, texts)]));
  const all = [...texts.plain, ...new Set(Object.values(chats).flat())];
  const json = (p: string): string => (p.endsWith(".json") ? p : join(p, "tokenizer.json"));
  const out = runVenvJson<HfOut>(join(repoRoot, "test/core/tokenizer/hf_tokenizers.py"), { texts: all, tokenizers: Object.fromEntries(Object.entries(files).map(([n, p]) => [n, json(p)])) }, tmp);
  const index = new Map(all.map((t, i) => [t, i]));
  const differences: Difference[] = [];
  const agreements = Object.entries(ours).map(([name, tk]) => {
    const theirs = out.results[name]!;
    let tokens = 0, chars = 0, agreed = 0;
    const t0 = performance.now();
    const check = (text: string, plain: boolean): void => {
      const i = index.get(text)!;
      const ids = tk.encode(text);
      const want = theirs.ids[i]!;
      const differ = (what: string): void => void differences.push({ name, text, what });
      if (ids.length !== want.length || ids.some((id, j) => id !== want[j])) {
        const j = ids.findIndex((id, k) => id !== want[k]);
        return differ(`ids differ at token ${j}: ours ${JSON.stringify(ids.slice(Math.max(0, j - 2), j + 4))}, tokenizers' ${JSON.stringify(want.slice(Math.max(0, j - 2), j + 4))}`);
      }
      const back = tk.decode(ids);
      if (back !== theirs.decoded[i]) return differ(`decodes differ: ours ${JSON.stringify(back)}, tokenizers' ${JSON.stringify(theirs.decoded[i])}`);
      if (!plain) {
        assert.ok(ids.some((id) => tk.isSpecial(id)), `${name}: no special token in ${JSON.stringify(text)}`);
        return;
      }
      if (back !== text) return differ(`the round trip gives ${JSON.stringify(back)}`);
      agreed++;
      tokens += ids.length;
      chars += text.length;
    };
    for (const text of texts.plain) check(text, true);
    for (const text of chats[name]!) check(text, false);
    // Real merges, not bytes (1 character per token): Qwen makes 2.9 of GSM8K, our 512-token BPE 1.9.
    assert.ok(chars / tokens > 1.5, `${name}: ${(chars / tokens).toFixed(2)} characters per token`);
    return { name, texts: texts.plain.length, agreed, tokens, chars, chatTexts: chats[name]!.length, ms: performance.now() - t0 };
  });
  return { version: out.tokenizers, agreements, differences };
}

/** Fails listing the first few differences, if any. */
export function assertNoDifferences(differences: readonly Difference[]): void {
  if (differences.length === 0) return;
  assert.fail(`${differences.length} texts where our tokenizer and Hugging Face tokenizers differ, first:\n${differences.slice(0, 5).map((d) => `${d.name}: ${JSON.stringify(d.text.slice(0, 120))}: ${d.what}`).join("\n")}`);
}

export function describe(a: Agreement): string {
  return `${a.name}: ${a.agreed} of ${a.texts} GSM8K texts agree (ids equal, both round trips exact; ${a.tokens} tokens, ${(a.chars / a.tokens).toFixed(2)} characters per token), and ${a.chatTexts} chat-format texts checked (${Math.round(a.ms)} ms ours)`;
}
