import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateSplit, type EvalSettings } from "../../../src/core/selftrain/evaluate";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import { tinyConfig, type ModelConfig } from "../../../src/core/model/config";
import type { DecodeSession } from "../../../src/core/engine/computeEngine";
import { DecodeOnlyEngine } from "../../helpers/decodeOnlyEngine";
import type { Example } from "../../../src/core/data/example";
import { pretrainedTokenizer } from "../tokenizer/pretrainedTokenizers";

/**
 * A model that writes `script` with some doubt: at each position the scripted token has logit `margin` and one
 * wrong token logit 0 (every other token far below), so greedy decoding and top-p 0.5 always follow the script,
 * while temperature sampling over the whole distribution strays now and then.
 */
class DoubtfulEngine extends DecodeOnlyEngine {
  readonly name = "doubtful";
  readonly device = "test";
  readonly config: ModelConfig;

  constructor(vocabSize: number, private readonly script: readonly number[], private readonly wrong: number, private readonly margin: number) {
    super();
    this.config = tinyConfig(vocabSize, { max_position_embeddings: 4096 });
  }

  async startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const V = this.config.vocab_size;
    let step = 0;
    const logits = (): Float32Array => {
      const out = new Float32Array(prompts.length * V).fill(-50);
      for (let r = 0; r < prompts.length; r++) {
        out[r * V + this.wrong] = 0;
        out[r * V + this.script[Math.min(step, this.script.length - 1)]!] = this.margin;
      }
      return out;
    };
    return { session: { step: async () => (step++, logits()), dispose: () => {} }, logits: logits() };
  }

}

test("pass@k samples with the user's top-p: with top-p 0.5 every sample follows the likeliest token, as greedy does; with 1 some stray", async () => {
  const tk = pretrainedTokenizer("llama3");
  const eos = tk.eosId;
  const engine = new DoubtfulEngine(tk.vocabSize, [...tk.encode(" 2 + 3 = 5.\n#### 5"), eos], tk.encode(" 7")[0]!, 0.4);
  const examples: Example[] = Array.from({ length: 5 }, (_, i) => ({ id: `q${i}`, question: `How much is 2 + 3? (${i})`, rationale: "2 + 3 = 5.\n#### 5", answer: 5 }));
  const settings = (topP: number): EvalSettings => ({ decode: { maxNewTokens: 30, calculator: false, temperature: 0.7, topP, batchSize: 40 }, passSamples: 8, passK: 1, seed: 3, stopIds: [eos] });
  const format = promptFormatFor(tk, "plain");
  const nucleus = await evaluateSplit(engine, format, examples, 1, settings(0.5));
  assert.equal(nucleus.accuracy, 1, "greedy follows the script");
  assert.equal(nucleus.passAtK, 1, "top-p 0.5 keeps only the scripted token (p ≈ 0.64), so every sample is right");
  const whole = await evaluateSplit(engine, format, examples, 1, settings(1));
  assert.ok(whole.passAtK! < 0.9, `at top-p 1 samples stray (pass@1 ${whole.passAtK})`);
});
