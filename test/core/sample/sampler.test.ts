import { test } from "node:test";
import assert from "node:assert/strict";
import { sampleRationales, type Sample } from "../../../src/core/sample/sampler";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { tinyConfig, type ModelConfig } from "../../../src/core/model/config";
import type { DecodeSession } from "../../../src/core/engine/computeEngine";
import { DecodeOnlyEngine } from "../../helpers/decodeOnlyEngine";
import type { TextTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { pretrainedTokenizer } from "../tokenizer/pretrainedTokenizers";

/**
 * An engine that writes a script: row r of a batch emits scripts[r] token by token (its logits put all mass on
 * the next scripted token), then the last token forever. It records the prompts it was given.
 */
class ScriptedEngine extends DecodeOnlyEngine {
  readonly name = "scripted";
  readonly device = "test";
  readonly config: ModelConfig;
  readonly prompts: number[][][] = [];

  constructor(vocabSize: number, private readonly scripts: readonly (readonly number[])[]) {
    super();
    this.config = tinyConfig(vocabSize, { max_position_embeddings: 4096 });
  }

  async startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    this.prompts.push(prompts.map((p) => p.slice()));
    const V = this.config.vocab_size;
    let step = 0;
    const logits = (): Float32Array => {
      const out = new Float32Array(prompts.length * V).fill(-10);
      prompts.forEach((_, r) => {
        const script = this.scripts[r % this.scripts.length]!;
        out[r * V + script[Math.min(step, script.length - 1)]!] = 10;
      });
      return out;
    };
    const session: DecodeSession = {
      step: async () => {
        step++;
        return logits();
      },
      dispose: () => {},
    };
    return { session, logits: logits() };
  }

}

const OPTIONS = { n: 1, temperature: 0, maxNewTokens: 40, calculator: false, seed: 0 };

/** The one sample of the one question. */
function only(out: Sample[][]): Sample {
  assert.equal(out.length, 1);
  assert.equal(out[0]!.length, 1);
  return out[0]![0]!;
}

function rationale(tk: TextTokenizer): number[] {
  return tk.encode("He has 3 + 2 = 5 apples.\n#### 5");
}

test("sampling stops on every stop id: the chat end-of-turn token, EOS, and the model's EOS ids passed as stopIds", async () => {
  const tk = pretrainedTokenizer("llama3");
  const format = promptFormatFor(tk, "chat");
  const words = rationale(tk);
  const EOT = 128_009, EOS = 128_001, EOM = 128_008;
  // Row 0 ends its turn, row 1 writes EOS, row 2 an id only the model's config lists, row 3 never stops.
  const scripts = [[...words, EOT], [...words, EOS], [...words, EOM], [...words, ...words, ...words]];
  const engine = new ScriptedEngine(tk.vocabSize, scripts);
  const questions = ["Q0", "Q1", "Q2", "Q3"];
  const out = await sampleRationales(engine, format, questions, { ...OPTIONS, stopIds: [EOM, EOS] });
  for (const r of [0, 1, 2]) {
    const s = out[r]![0]!;
    assert.equal(s.finished, true, `row ${r}`);
    assert.deepEqual(s.tokens, words, `row ${r}: the stop token is not part of the rationale`);
    assert.equal(s.text, "He has 3 + 2 = 5 apples.\n#### 5");
  }
  assert.equal(out[3]![0]!.finished, false);
  assert.equal(out[3]![0]!.tokens.length, 40);
  // The prompts were the chat format's.
  assert.deepEqual(engine.prompts[0], questions.map((q) => format.encodePrompt(q)));
});

test("without the model's EOS ids, an id outside the format's stop ids does not end a rationale", async () => {
  const tk = pretrainedTokenizer("llama3");
  const words = rationale(tk);
  const engine = new ScriptedEngine(tk.vocabSize, [[...words, 128_008, ...words, 128_009]]);
  const s = only(await sampleRationales(engine, promptFormatFor(tk, "chat"), ["Q"], OPTIONS));
  assert.equal(s.finished, true);
  assert.deepEqual(s.tokens, [...words, 128_008, ...words]);
});

test("the plain format stops on EOS alone, and a bare tokenizer samples in its model's own format", async () => {
  const tk = pretrainedTokenizer("qwen3");
  const words = rationale(tk);
  const IM_END = 151_645, ENDOFTEXT = 151_643;
  const plain = promptFormatFor(tk, "plain");
  const engine = new ScriptedEngine(tk.vocabSize, [[...words, ENDOFTEXT, IM_END]]);
  const a = only(await sampleRationales(engine, plain, ["Q"], OPTIONS));
  // Qwen3 instruct's EOS is <|im_end|>: <|endoftext|> (Qwen3 base's EOS) ends it only when passed as a stop id.
  assert.deepEqual(a.tokens, [...words, ENDOFTEXT]);
  assert.deepEqual(engine.prompts[0], [tk.encode("Question: Q\nAnswer: ")]);
  const b = only(await sampleRationales(engine, plain, ["Q"], { ...OPTIONS, stopIds: [ENDOFTEXT] }));
  assert.deepEqual(b.tokens, words);
  await sampleRationales(engine, tk, ["Q"], OPTIONS);
  assert.deepEqual(engine.prompts[2], [promptFormatFor(tk, "auto").encodePrompt("Q")]);
  assert.equal(tk.decode(engine.prompts[2]![0]!), "user\nQ\nassistant\n<think>\n\n</think>\n\n", "the chat template's prompt (decode leaves the special tokens out)");
});
