import type { DpoMetrics } from "./computeEngine";

/**
 * The sigmoid DPO loss (Rafailov et al.; TRL's `dpo_loss` with loss_type "sigmoid") and TRL's metrics, a pure
 * function of four per-sequence log-probability vectors [B] and beta:
 *   loss = −log σ(beta · ((π_c − ref_c) − (π_r − ref_r)))
 * The engines compute the same loss in their graphs (engine/tf/tfLosses.ts, engine/ort/llama/llamaGraphs.ts) and are
 * tested against this one.
 */
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
