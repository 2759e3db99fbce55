#!/usr/bin/env python3
"""transformers' side of test/core/model/transformersLoads.test.ts: loads each checkpoint folder we saved as a user
would (AutoModelForCausalLM.from_pretrained(folder, dtype="auto"), AutoTokenizer.from_pretrained(folder)) and reports
what it got: the model class and dtype, the loading report (missing, unexpected, mismatched keys), whether the head is
tied, a hash of every parameter as transformers holds it, the tokenizer's ids of the given texts, and the logits of
the given ids in float64 (the model cast after loading: the exact reference) and in float32.

  .venv/bin/python transformers_loads.py JOB.json      (one JSON object on stdout)

JOB: {"folders": [{"dir": folder, "rows": [[ids], ...], "texts": [text, ...]}, ...]}
Out: {"transformers": version, "torch": version, "folders": [{"class", "dtype", "missing", "unexpected", "mismatched",
"tied", "params": {name: sha256 of its float32 bytes}, "tokens": [[ids], ...], "f64": [[[logit] * V] * T] * B,
"f32": likewise}, ...]}. Runs offline (HF_HUB_OFFLINE). Not part of the product."""
import hashlib, json, os, sys, warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging


def logits_of(model, rows):
    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids])).logits[0].tolist() for ids in rows]


def param_hash(t):
    # float32 little-endian bytes, as our Float32Array holds them (bf16 and f32 widen exactly)
    return hashlib.sha256(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).hexdigest()


def load(folder):
    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype="auto", output_loading_info=True)
    model.eval()
    tok = AutoTokenizer.from_pretrained(folder)
    return model, info, tok


def main() -> None:
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(int(os.environ.get("STS_TORCH_THREADS", "1")))
    job = json.load(open(sys.argv[1]))
    out = []
    for f in job["folders"]:
        model, info, tok = load(f["dir"])
        entry = {
            "class": type(model).__name__,
            "dtype": str(model.dtype).replace("torch.", ""),
            "missing": sorted(info.get("missing_keys", [])),
            "unexpected": sorted(info.get("unexpected_keys", [])),
            "mismatched": sorted(str(k) for k in info.get("mismatched_keys", [])),
            "tied": model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(),
            "params": {n: param_hash(p) for n, p in model.named_parameters()},
            "tokens": [tok(t, add_special_tokens=False)["input_ids"] for t in f["texts"]],
        }
        entry["f32"] = logits_of(model.to(torch.float32), f["rows"])
        entry["f64"] = logits_of(model.to(torch.float64), f["rows"])
        out.append(entry)
    json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "folders": out}, sys.stdout)


if __name__ == "__main__":
    main()
