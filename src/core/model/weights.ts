import { Rng } from "../util/rng";
import { parameterShapes } from "./architecture";
import type { ModelConfig } from "./config";

/** Host-side weights by Hugging Face parameter name: what checkpoints hold and both engines load. */
export type HostWeights = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * Seeded initialisation as Hugging Face Llama does it: normal(0, 0.02) for embeddings and linear layers,
 * ones for RMSNorm weights (q_norm and k_norm included). Biases (qwen2, or attention_bias) are drawn like the
 * weights rather than zeroed as transformers does, so that tests exercise them; a model we create has none
 * (tinyConfig is plain Llama). Drawn on the host so every engine starts from the same numbers.
 */
export function initWeights(config: ModelConfig, seed: number, std = 0.02): HostWeights {
  const rng = new Rng(seed);
  const out: HostWeights = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith("norm.weight")) data.fill(1);
    else for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    out.set(name, { shape, data });
  }
  return out;
}

/** Checks that weights hold exactly the parameters of a config, with the right shapes. */
export function checkWeights(config: ModelConfig, weights: HostWeights, source: string): void {
  const expected = parameterShapes(config);
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w) throw new Error(`${source}: missing parameter ${name}`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: ${name} has shape [${w.shape}] but the config needs [${shape}]`);
    }
  }
  for (const name of weights.keys()) {
    if (!expected.has(name) && !name.endsWith("rotary_emb.inv_freq")) throw new Error(`${source}: unexpected parameter ${name}`);
  }
}
