#!/usr/bin/env bash
# What the Python-backed tests need, made where it can be: .venv (setup-venv.sh: PyTorch, transformers, pinned in
# requirements-dev.txt) and, with --model, the converted SmolLM2-135M-Instruct folder (scripts/models/smollm2.sh).
# `npm test` runs it first (pretest) and `npm run test:heavy` with --model, so a fresh machine needs no other step.
# It never fails the tests' command: what cannot be made (no PyPI, no python3-venv) is said here, and each test that
# needs it skips with a line naming what is missing.
# Usage: scripts/python/prepare.sh [--model]
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
if ! bash "$ROOT/scripts/python/setup-venv.sh"; then
  echo "prepare: .venv could not be made (see above); the tests that need transformers or PyTorch 2 will skip" >&2
  exit 0
fi
if [ "${1:-}" = "--model" ]; then
  if dir=$(bash "$ROOT/scripts/models/smollm2.sh" | tail -n 1); then
    echo "prepare: SmolLM2-135M-Instruct at $dir"
  else
    echo "prepare: SmolLM2-135M-Instruct could not be converted (see above); the real-model tests will skip" >&2
  fi
fi
exit 0
