#!/usr/bin/env python3
"""Hugging Face `tokenizers`' side of test/core/tokenizer/hfTokenizers.test.ts (and its heavy twin): the Rust
library transformers' fast tokenizers run, on tokenizer.json files as they are, encoding texts without special
tokens added (add_special_tokens=False, as our TextTokenizer.encode) and decoding the ids back with special tokens
skipped (as our decode).

  .venv/bin/python hf_tokenizers.py JOB.json      (one JSON object on stdout)

JOB: {"texts": [text, ...], "tokenizers": {name: path of a tokenizer.json, ...}}
Out: {"tokenizers": version, "results": {name: {"ids": [[id, ...] per text], "decoded": [text per text]}}}
Not part of the product."""
import json, sys

import tokenizers
from tokenizers import Tokenizer


def main() -> None:
    job = json.load(open(sys.argv[1], encoding="utf-8"))
    texts = job["texts"]
    results = {}
    for name, path in job["tokenizers"].items():
        tk = Tokenizer.from_file(path)
        ids = [e.ids for e in tk.encode_batch(texts, add_special_tokens=False)]
        decoded = tk.decode_batch(ids, skip_special_tokens=True)
        results[name] = {"ids": ids, "decoded": decoded}
    json.dump({"tokenizers": tokenizers.__version__, "results": results}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
