import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { loadTokenizer, saveTokenizer, tokenizerFromFiles } from "../../../src/core/tokenizer/tokenizer";
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
