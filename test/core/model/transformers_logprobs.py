#!/usr/bin/env python3
"""transformers' side of test/core/model/realSmollm2.test.ts: per-token log-probabilities of given token ids from a
Hugging Face model folder, with transformers' own model class (AutoModelForCausalLM), in float32 as users run it
and in float64 as the exact reference; and transformers' own tokenisation of the same chat-formatted texts.

  .venv/bin/python transformers_logprobs.py JOB.json      (one JSON object on stdout)

JOB: {"dir": model folder, "rows": [[ids], ...], "chats": [{"question": q, "completion": c}, ...]}
Out: {"f32": [[log p(ids[t] | ids[<t]) for t >= 1], ...], "f64": [...], "tokens": [[ids], ...], "prompts": [text, ...]}
where tokens are the chats encoded as our ChatFormat does: the template's prompt (user turn, generation prompt),
then the completion, then the end-of-turn token. Runs offline (HF_HUB_OFFLINE). Not part of the product."""
import json, os, sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging


def token_logprobs(model, rows, dtype):
    out = []
    with torch.no_grad():
        for ids in rows:
            x = torch.tensor([ids])
            logits = model(input_ids=x).logits[0].to(dtype)
            lp = torch.log_softmax(logits[:-1], dim=-1).gather(1, x[0, 1:, None])[:, 0]
            out.append([float(v) for v in lp])
    return out


def main() -> None:
    hf_logging.disable_progress_bar()
    torch.set_num_threads(int(os.environ.get("STS_TORCH_THREADS", "2")))
    job = json.load(open(sys.argv[1]))
    folder = job["dir"]
    tok = AutoTokenizer.from_pretrained(folder)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    tokens, prompts = [], []
    for chat in job.get("chats", []):
        prompt = tok.apply_chat_template([{"role": "user", "content": chat["question"]}], add_generation_prompt=True, tokenize=False)
        prompts.append(prompt)
        tokens.append(tok(prompt, add_special_tokens=False)["input_ids"] + tok(chat["completion"], add_special_tokens=False)["input_ids"] + [end])
    result = {"tokens": tokens, "prompts": prompts}
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    result["f32"] = token_logprobs(model, job["rows"], torch.float32)
    model = model.to(torch.float64)
    result["f64"] = token_logprobs(model, job["rows"], torch.float64)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
