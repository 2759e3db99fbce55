import type * as TfCore from "@tensorflow/tfjs-core";
import "../model/tfOps";

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;

/** The DPO metrics under TRL's names, averaged over the batch. */
export interface DpoMetrics {
  loss: number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  "rewards/accuracies": number;
  "logps/chosen": number;
  "logps/rejected": number;
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

/** The same loss and metrics on host numbers, for checking and for engines that compute on the host. */
export function dpoMetricsHost(policyChosen: ArrayLike<number>, policyRejected: ArrayLike<number>, refChosen: ArrayLike<number>, refRejected: ArrayLike<number>, beta: number): DpoMetrics {
  const n = policyChosen.length;
  let loss = 0, rc = 0, rr = 0, acc = 0, lc = 0, lr = 0;
  for (let i = 0; i < n; i++) {
    const c = beta * ((policyChosen[i] as number) - (refChosen[i] as number));
    const r = beta * ((policyRejected[i] as number) - (refRejected[i] as number));
    const x = c - r;
    loss += x > 0 ? Math.log1p(Math.exp(-x)) : -x + Math.log1p(Math.exp(x));
    rc += c;
    rr += r;
    acc += c > r ? 1 : 0;
    lc += policyChosen[i] as number;
    lr += policyRejected[i] as number;
  }
  return {
    loss: loss / n,
    "rewards/chosen": rc / n,
    "rewards/rejected": rr / n,
    "rewards/margins": (rc - rr) / n,
    "rewards/accuracies": acc / n,
    "logps/chosen": lc / n,
    "logps/rejected": lr / n,
  };
}
