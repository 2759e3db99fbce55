import type * as TfCore from "@tensorflow/tfjs-core";
import { oneHotF32 } from "./tfOps";

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

export interface DpoLossTensors {
  /** Mean sigmoid DPO loss, a scalar. */
  loss: Tensor;
  /** beta × (policy − reference) log-ratio of each chosen / rejected sequence, [B]. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
}

/**
 * The sigmoid DPO loss (Rafailov et al.; TRL's `dpo_loss` with loss_type "sigmoid"), a pure function of four
 * per-sequence log-probability vectors [B] and beta:
 *   loss = −log σ(beta · ((π_c − ref_c) − (π_r − ref_r)))
 * The reference log-probabilities are inputs: computed once per round, not per step.
 */
export function dpoLoss(tf: Tf, policyChosen: Tensor, policyRejected: Tensor, refChosen: Tensor, refRejected: Tensor, beta: number): DpoLossTensors {
  const chosenRatio = tf.sub(policyChosen, refChosen);
  const rejectedRatio = tf.sub(policyRejected, refRejected);
  const logits = tf.mul(tf.sub(chosenRatio, rejectedRatio), beta);
  // −log σ(x) = softplus(−x), stable for large |x|.
  const loss = tf.mean(tf.softplus(tf.neg(logits)));
  return { loss, chosenRewards: tf.mul(chosenRatio, beta), rejectedRewards: tf.mul(rejectedRatio, beta) };
}
