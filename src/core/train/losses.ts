import type * as TfCore from "@tensorflow/tfjs-core";
import { oneHotF32 } from "../model/tfOps";

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;

/** Log-probability of each target token: logits [B, T, V], targets [B, T] int32 → [B, T]. */
export function tokenLogProbs(tf: Tf, logits: Tensor, targets: Tensor): Tensor {
  const V = logits.shape[2] as number;
  const logp = tf.logSoftmax(logits, -1);
  // A one-hot product rather than a gather: its gradient needs no UnsortedSegmentSum (absent on wasm).
  return tf.sum(tf.mul(logp, oneHotF32(tf, targets, V)), -1);
}

/** SFT loss: mean cross-entropy over the tokens where mask [B, T] is 1 (the rationale, never the prompt). */
export function sftLoss(tf: Tf, logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  const picked = tokenLogProbs(tf, logits, targets);
  return tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), tf.maximum(tf.sum(mask), 1));
}

/** Sum of the completion tokens' log-probabilities per sequence, [B]: what DPO compares. */
export function sequenceLogProbs(tf: Tf, logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  return tf.sum(tf.mul(tokenLogProbs(tf, logits, targets), mask), -1);
}
