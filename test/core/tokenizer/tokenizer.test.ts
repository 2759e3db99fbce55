import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { loadTokenizer, numericDigits, saveTokenizer, tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
import { byteLevelBpeJson, bytesToUnicode, DEFAULT_SPECIAL_TOKENS } from "../../../src/core/tokenizer/tokenizerJson";
import { Tokenizer } from "@huggingface/tokenizers";
import { generateSyntheticTask } from "../../../src/core/data/synthetic";
import { gsm8kDir, GSM8K_ABSENT, tempDir } from "../../helpers/paths";

const dir = gsm8kDir();

function gsm8kTexts(file: string): string[] {
  return readFileSync(file, "utf8").trim().split("\n").flatMap((l) => {
    const r = JSON.parse(l) as { question: string; answer: string };
    return [r.question, r.answer];
  });
}

test("a BPE tokenizer trained on GSM8K train is saved, reloaded and round-trips GSM8K test exactly", { skip: dir ? false : GSM8K_ABSENT }, (t) => {
  const out = tempDir(t);
  const files = trainBpe(gsm8kTexts(join(dir!, "train.jsonl")), { vocabSize: 1024 });
  saveTokenizer(files, out);
  const tk = loadTokenizer(out);
  assert.equal(tk.vocabSize, 1024);
  let tokens = 0;
  let chars = 0;
  for (const text of gsm8kTexts(join(dir!, "test.jsonl"))) {
    const ids = tk.encode(text);
    tokens += ids.length;
    chars += text.length;
    assert.equal(tk.decode(ids), text);
  }
  // Merges must compress: byte-level alone would be ~1 character per token.
  assert.ok(chars / tokens > 2, `only ${(chars / tokens).toFixed(2)} characters per token`);
});

test("special tokens: BOS/EOS/PAD have ids, are not produced for plain text and are dropped by decode", () => {
  const corpus = generateSyntheticTask({ seed: 1, count: 300 }).flatMap((e) => [e.question, e.rationale]);
  const tk = tokenizerFromFiles(trainBpe(corpus, { vocabSize: 400 }));
  assert.deepEqual([tk.padId, tk.bosId, tk.eosId], [0, 1, 2]);
  const text = corpus.join("\n");
  const ids = tk.encode(text);
  assert.ok(!ids.includes(tk.eosId) && !ids.includes(tk.bosId!) && !ids.includes(tk.padId));
  assert.equal(tk.decode(ids), text);
  assert.equal(tk.decode([tk.bosId!, ...tk.encode("Mia has 3"), tk.eosId, tk.padId]), "Mia has 3");
  assert.equal(tk.decode([]), "");
});

test("digits are always split one by one, so arithmetic is digit-wise", () => {
  const corpus = Array.from({ length: 200 }, () => "12345 + 678 = 13023 and 999 * 2 = 1998");
  const tk = tokenizerFromFiles(trainBpe(corpus, { vocabSize: 300 }));
  const pieces = tk.encode("12345").map((id) => tk.decode([id]));
  assert.deepEqual(pieces, ["1", "2", "3", "4", "5"]);
});

test("training is deterministic", () => {
  const corpus = generateSyntheticTask({ seed: 3, count: 200 }).map((e) => e.rationale);
  assert.deepEqual(trainBpe(corpus, { vocabSize: 350 }), trainBpe(corpus, { vocabSize: 350 }));
});

test("loading a file that is not a tokenizer says what is wrong and where", (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "tokenizer.json"), "{ nope");
  assert.throws(() => loadTokenizer(d), /tokenizer\.json: not valid JSON/);
  writeFileSync(join(d, "tokenizer.json"), "{}");
  assert.throws(() => loadTokenizer(d), /not a Hugging Face tokenizer\.json/);
  assert.throws(() => loadTokenizer(join(d, "missing")), /no tokenizer\.json there/);
});

test("the Digits pre-tokenizer splits off every Unicode numeral as the Rust tokenizers library does (¾ ½ ² too), not 0-9 only", () => {
  // Our own pre-tokenizer setup (Digits, individual digits, then ByteLevel), with one merge across " ¾"'s first two
  // bytes: " ¾" is one piece [ĠÂ, ¾] when ¾ is not split off, and [Ġ, Â¾] when it is (transformers' ids).
  const symbols = [...bytesToUnicode().values()];
  const vocab = new Map<string, number>();
  for (const t of [...Object.values(DEFAULT_SPECIAL_TOKENS), ...symbols, "ĠÂ", "Â¾"]) if (!vocab.has(t)) vocab.set(t, vocab.size);
  const tk = tokenizerFromFiles(byteLevelBpeJson(vocab, [["Ġ", "Â"], ["Â", "¾"]], DEFAULT_SPECIAL_TOKENS));
  assert.deepEqual(tk.encode(" ¾"), [vocab.get("Ġ"), vocab.get("Â¾")]);
  assert.equal(tk.decode(tk.encode(" ¾ of 12½")), " ¾ of 12½");
  const pre = (individual: boolean): string[] => {
    const files = byteLevelBpeJson(vocab, [], DEFAULT_SPECIAL_TOKENS);
    const t = new Tokenizer({ ...files.tokenizer, pre_tokenizer: { type: "Digits", individual_digits: individual } }, files.config);
    numericDigits(t.pre_tokenizer);
    return t.pre_tokenizer!.pre_tokenize_text(" ¾ of 12½x²", {}) as string[];
  };
  assert.deepEqual(pre(true), [" ", "¾", " of ", "1", "2", "½", "x", "²"]);
  assert.deepEqual(pre(false), [" ", "¾", " of ", "12½", "x", "²"]);
});
