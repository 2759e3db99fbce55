import { test } from "node:test";
import { gsm8kDir, GSM8K_ABSENT, tempDir } from "../../helpers/paths";
import { convertedSmollm2Dir, skipWithoutVenv } from "../../helpers/venv";
import { pretrainedDir } from "./pretrainedTokenizers";
import { assertNoDifferences, compareWithHfTokenizers, describe, gsm8kTexts } from "./hfAgreement";

// hfTokenizers.test.ts at full size, with the real model's tokenizer: SmolLM2-135M-Instruct's tokenizer.json as
// `npm run model:smollm2` converts it (transformers, from the GGUF's vocabulary and merges), with its chat template,
// beside Qwen3's and Llama 3's; every question and answer of GSM8K's train and test splits (17,584 texts).
//
// SmolLM2's pre-tokenizer starts with {"type": "Digits", "individual_digits": true}: `tokenizers` (Rust) splits off
// every character Unicode calls numeric (¾ ½ ¼ ³ ...), and so does ours (src/core/tokenizer numericDigits; the
// library it runs, @huggingface/tokenizers 0.2.0, split [0-9] only, and 10 of the 17,584 texts differed).

const gsm8k = gsm8kDir();
const smollm2 = convertedSmollm2Dir();
const skip = skipWithoutVenv(["tokenizers"]) || (gsm8k ? false : GSM8K_ABSENT) || (smollm2 ? false : "SmolLM2-135M-Instruct not converted (npm run model:smollm2, or SELFTRAIN_SMOLLM2=DIR): skipped");

test("Hugging Face tokenizers and ours agree on all of GSM8K with SmolLM2's, Qwen3's and Llama 3's tokenizer.json: ids and round trip", { skip, timeout: 600_000 }, (t) => {
  const out = compareWithHfTokenizers({ smollm2: smollm2!, qwen3: pretrainedDir("qwen3"), llama3: pretrainedDir("llama3") }, gsm8kTexts(gsm8k!, ["train", "test"], 200), tempDir(t));
  t.diagnostic(`tokenizers ${out.version}, GSM8K train + test`);
  for (const a of out.agreements) t.diagnostic(describe(a));
  assertNoDifferences(out.differences);
});
