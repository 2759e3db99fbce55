#!/usr/bin/env python3
"""TRL's side of test/core/train/trlDpo.test.ts: the DPO loss and the metrics DPOTrainer logs, computed by TRL's own
code, DPOTrainer._compute_loss (TRL 1.16 has no separate dpo_loss: the loss and the metrics are computed in that
method, from the model's per-token log-probabilities and the reference's). No trainer is built (no dataset, no
training loop): a bare DPOTrainer gets the attributes DPOTrainer.__init__ sets from a DPOConfig (its "Training
arguments" block), an accelerate Accelerator on the CPU and TRL's fused LM head, and the batches come from TRL's
DataCollatorForPreference.

  .venv/bin/python trl_dpo.py JOB.json      (one JSON object on stdout)

JOB: {"cases": [{"beta", "policy_chosen": [B], "policy_rejected", "ref_chosen", "ref_rejected"}, ...],
      "models": {"policy": folder, "reference": folder, "beta", "pairs": [{"prompt_ids", "chosen_ids", "rejected_ids"}]}}
  cases: per-sequence log-probabilities given: a stub model returns them as TRL's fused head would (the
         sequence's log-probability on its one completion token), the reference's come precomputed
         (precompute_ref_log_probs), as TRL takes them;
  models: TRL computes both sides itself, with transformers' models loaded from the folders (in float64).
Out: {"trl", "entry", "default_beta", "default_loss_type", "cases": [{"loss", "metrics": {name: value}}, ...],
      "models": {"loss", "metrics", "policy_logps": [2B], "ref_logps": [2B]}}
Runs offline. Not part of the product."""
import json, os, sys, types, warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
warnings.filterwarnings("ignore")
import torch
import trl
from accelerate import Accelerator
from collections import defaultdict
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import add_fused_lm_head

ENTRY = "trl.DPOTrainer._compute_loss"


OUTPUT_DIR = None


def config(**kw):
    # On the CPU: DPOConfig's bf16 default asks for a GPU. output_dir is never written to (no training).
    return DPOConfig(output_dir=OUTPUT_DIR, report_to=[], use_cpu=True, bf16=False, **kw)


def bare_trainer(beta, model, ref_model, precompute):
    """A DPOTrainer whose attributes are the ones _compute_loss reads, set as DPOTrainer.__init__ sets them."""
    args = config(beta=beta, precompute_ref_log_probs=precompute)
    tr = DPOTrainer.__new__(DPOTrainer)
    tr.args = args
    tr.model = model
    tr.ref_model = ref_model
    tr.accelerator = Accelerator(cpu=True)
    # DPOTrainer.__init__, "Training arguments"
    tr.beta = args.beta
    tr.precompute_ref_logps = args.precompute_ref_log_probs
    tr.loss_types = args.loss_type
    tr.loss_weights = args.loss_weights or [1.0] * len(tr.loss_types)
    tr.ld_alpha = args.ld_alpha
    tr.f_divergence_type = args.f_divergence_type
    tr.f_alpha_divergence_coef = args.f_alpha_divergence_coef
    tr.label_smoothing = args.label_smoothing
    tr.use_weighting = args.use_weighting
    tr.aux_loss_enabled = False
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr._total_train_tokens = 0
    tr._tp_size = 1
    return tr


def metrics_of(tr):
    # DPOTrainer.log's averaging of what one _compute_loss call recorded (one value each here)
    return {k: sum(v) / len(v) for k, v in tr._metrics["train"].items()}


class GivenLogps(torch.nn.Module):
    """A model whose fused-head output is given: the sequence log-probabilities on its last position (the batch's
    one completion token), zero elsewhere, as TRL's fused head leaves prompt positions."""

    def __init__(self, logps):
        super().__init__()
        self.logps = logps

    def forward(self, input_ids, fused_lm_head=False, labels=None, **kwargs):
        assert fused_lm_head and labels is not None
        B, T = input_ids.shape
        lp = torch.zeros(B, T - 1, dtype=torch.float64)
        lp[:, -1] = self.logps
        zero = torch.zeros_like(lp)
        return types.SimpleNamespace(log_probs=lp, entropy=zero, mean_logits=zero, is_top1=zero.bool())


def run_case(case):
    B = len(case["policy_chosen"])
    examples = [
        {"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3], "ref_chosen_logps": case["ref_chosen"][i], "ref_rejected_logps": case["ref_rejected"][i]}
        for i in range(B)
    ]
    inputs = DataCollatorForPreference(pad_token_id=0)(examples)
    # The collator makes float32 tensors of them; the comparison is in float64 on both sides.
    inputs["ref_chosen_logps"] = torch.tensor(case["ref_chosen"], dtype=torch.float64)
    inputs["ref_rejected_logps"] = torch.tensor(case["ref_rejected"], dtype=torch.float64)
    model = GivenLogps(torch.tensor(case["policy_chosen"] + case["policy_rejected"], dtype=torch.float64))
    tr = bare_trainer(case["beta"], model, None, True)
    with torch.no_grad():
        loss = tr._compute_loss(model, inputs, return_outputs=False)
    return {"loss": loss.item(), "metrics": metrics_of(tr)}


def load(folder):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    return model


def run_models(job):
    policy, reference = load(job["policy"]).train(), load(job["reference"]).eval()
    inputs = DataCollatorForPreference(pad_token_id=job.get("pad_token_id", 0))(job["pairs"])
    tr = bare_trainer(job["beta"], policy, reference, False)
    with torch.no_grad():
        loss = tr._compute_loss(policy, inputs, return_outputs=False)
        ref_c, ref_r = tr.compute_ref_log_probs(reference, inputs)
        pol_c, pol_r = tr.compute_ref_log_probs(policy, inputs)
    return {
        "loss": loss.item(),
        "metrics": metrics_of(tr),
        "policy_logps": torch.cat([pol_c, pol_r]).tolist(),
        "ref_logps": torch.cat([ref_c, ref_r]).tolist(),
    }


def main() -> None:
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(int(os.environ.get("STS_TORCH_THREADS", "1")))
    global OUTPUT_DIR
    OUTPUT_DIR = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "trl-output")
    job = json.load(open(sys.argv[1]))
    defaults = config()
    out = {
        "trl": trl.__version__,
        "entry": ENTRY,
        "default_beta": defaults.beta,
        "default_loss_type": defaults.loss_type,
        "cases": [run_case(c) for c in job.get("cases", [])],
    }
    if "models" in job:
        out["models"] = run_models(job["models"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
