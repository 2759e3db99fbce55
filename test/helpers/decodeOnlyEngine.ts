import type { ComputeEngine, DecodeSession } from "../../src/core/engine/computeEngine";
import type { ModelConfig } from "../../src/core/model/config";

/** A stand-in engine for tests of what decodes (the sampler, evaluation): only startDecoding is its own. */
export abstract class DecodeOnlyEngine implements ComputeEngine {
  abstract readonly name: string;
  abstract readonly device: string;
  abstract readonly config: ModelConfig;
  abstract startDecoding(prompts: readonly number[][], maxNewTokens?: number): Promise<{ session: DecodeSession; logits: Float32Array }>;

  sftBackward(): never {
    throw new Error("not a training engine");
  }
  dpoBackward(): never {
    throw new Error("not a training engine");
  }
  optimizerStep(): never {
    throw new Error("not a training engine");
  }
  resetOptimizer(): void {}
  sequenceLogProbs(): never {
    throw new Error("not a training engine");
  }
  getWeights(): never {
    throw new Error("no weights");
  }
  setWeights(): void {}
  dispose(): void {}
}
