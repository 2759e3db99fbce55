#!/usr/bin/env python3
"""Converts one GGUF file into a Hugging Face model folder with transformers: float32 safetensors, config.json,
generation_config.json, tokenizer.json and tokenizer_config.json with the chat template in it.

  .venv/bin/python scripts/models/gguf_to_hf.py FILE.gguf OUT_DIR

transformers dequantises the GGUF's tensors (Q4_1, Q8_0 here) to float32 as it loads them; the loaded model keeps
a "gguf" quantization_config that save_pretrained refuses to write, so the weights are moved into a model built
from the same config without it. transformers' GGUF tokenizer reader drops the file's pre-tokenizer name
(tokenizer.ggml.pre): for "smollm" (digits split one by one before the byte-level split, as llama.cpp runs it and as
SmolLM2's own tokenizer.json has it) the pre-tokenizer is put back; without it, a space before a number merges with
the spaces before it (101 of GSM8K's 17,584 questions and answers tokenize differently). OUT_DIR must not exist: smollm2.sh writes into a temporary folder beside the final
one and renames it when this script has succeeded. Runs offline (HF_HUB_OFFLINE): nothing is fetched from a hub.
Not part of the product (model preparation, `npm run model:smollm2`)."""
import os, sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import json
import torch
from gguf import GGUFReader
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from transformers.utils import logging as hf_logging


# Pre-tokenizers by the GGUF's tokenizer.ggml.pre, where transformers' plain ByteLevel is not the file's.
PRE_TOKENIZERS = {
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ]},
}


def gguf_string(reader: GGUFReader, key: str) -> "str | None":
    field = reader.fields.get(key)
    return None if field is None else str(field.contents())


def fix_tokenizer(out: str, pre: "str | None", max_length: int) -> None:
    """The pre-tokenizer the GGUF names, and a model_max_length of the model's context (not transformers' 1e30)."""
    path = os.path.join(out, "tokenizer.json")
    tok = json.load(open(path, encoding="utf-8"))
    if pre in PRE_TOKENIZERS:
        tok["pre_tokenizer"] = PRE_TOKENIZERS[pre]
    elif tok.get("pre_tokenizer") != {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}:
        print(f"gguf_to_hf: tokenizer.ggml.pre is {pre!r}; kept transformers' pre-tokenizer {tok.get('pre_tokenizer')}", file=sys.stderr)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
    path = os.path.join(out, "tokenizer_config.json")
    cfg = json.load(open(path, encoding="utf-8"))
    for key in ("is_local", "local_files_only"):
        cfg.pop(key, None)
    cfg["model_max_length"] = max_length
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_to_hf.py FILE.gguf OUT_DIR")
    gguf_path, out = sys.argv[1], sys.argv[2]
    if os.path.exists(out):
        sys.exit(f"gguf_to_hf: {out} exists; give a new folder")
    hf_logging.disable_progress_bar()
    folder, name = os.path.split(os.path.abspath(gguf_path))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)

    raw = loaded.config.to_dict()
    raw.pop("quantization_config", None)
    raw.pop("_name_or_path", None)
    raw.pop("_model_name_or_path", None)
    raw.pop("transformers_version", None)
    model_type = raw.pop("model_type")
    config = AutoConfig.for_model(model_type, **raw)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {k: v.to(torch.float32) for k, v in loaded.state_dict().items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    for name_, p in model.state_dict().items():
        if not torch.isfinite(p).all():
            sys.exit(f"gguf_to_hf: {name_} has a NaN or an infinity after dequantisation")
    model.generation_config = GenerationConfig.from_model_config(config)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(loaded.generation_config, key, None)
        if value is not None:
            setattr(model.generation_config, key, value)

    model.save_pretrained(out, safe_serialization=True)
    # The chat template inside tokenizer_config.json (transformers writes it to chat_template.jinja by default).
    tokenizer.save_pretrained(out, save_jinja_files=False)
    fix_tokenizer(out, gguf_string(GGUFReader(gguf_path), "tokenizer.ggml.pre"), config.max_position_embeddings)
    for entry in os.listdir(out):
        os.chmod(os.path.join(out, entry), 0o644)
    print(f"gguf_to_hf: {gguf_path} -> {out}: {sum(p.numel() for p in model.parameters()):,} parameters, float32", file=sys.stderr)


if __name__ == "__main__":
    main()
