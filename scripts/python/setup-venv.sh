#!/usr/bin/env bash
# Creates .venv at the repository root with requirements-dev.txt (PyTorch 2.13 CPU build, threadpoolctl,
# transformers with gguf and accelerate, tokenizers, TRL): the second PyTorch peer of `npm run bench:train` /
# `npm run bench:sample` (Debian's python3-torch at /usr/bin/python3 is the other), model preparation
# (`npm run model:smollm2`) and the tests' references (transformers, TRL, tokenizers). Idempotent: when .venv already has every pinned version, nothing is installed
# (a second run takes a few seconds).
# Usage: scripts/python/setup-venv.sh        (env PYTHON=python3.11 picks the interpreter; FORCE=1 reinstalls)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/requirements-dev.txt"
PYTHON="${PYTHON:-python3}"

# Every `name==version` line of requirements-dev.txt installed at that version (a local label such as +cpu
# included); prints what is missing or differs.
satisfied() {
  [ -x "$VENV/bin/python" ] || { echo "no $VENV/bin/python"; return 1; }
  "$VENV/bin/python" - "$REQ" <<'PY'
import importlib.metadata as md, re, sys
bad = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
    if not m:
        continue
    name, want = m.groups()
    try:
        got = md.version(name)
    except md.PackageNotFoundError:
        got = None
    if got != want:
        bad.append(f"{name} {got or 'absent'} (want {want})")
if bad:
    print("; ".join(bad))
    sys.exit(1)
PY
}

if [ -z "${FORCE:-}" ] && why=$(satisfied); then
  echo "setup-venv: $VENV already satisfies requirements-dev.txt, nothing to do"
else
  [ -n "${FORCE:-}" ] || echo "setup-venv: ${why:-no venv yet}"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -r "$REQ" || {
    echo "setup-venv: pip failed; torch==2.13.0+cpu is the CPU wheel kept on disk for pip on the project's machines (see requirements-dev.txt)" >&2
    exit 1
  }
  why=$(satisfied) || { echo "setup-venv: installed, but still: $why" >&2; exit 1; }
fi
"$VENV/bin/python" -c 'import warnings; warnings.filterwarnings("ignore", message="Failed to initialize NumPy"); import importlib.metadata as md, torch, threadpoolctl; hf, gguf = md.version("transformers"), md.version("gguf"); print(f"setup-venv: .venv/bin/python has torch {torch.__version__}, threadpoolctl {threadpoolctl.__version__}, transformers {hf}, gguf {gguf}")'

# The Debian peer's extras (not needed by .venv): python3-threadpoolctl reports its OpenBLAS, and
# libopenblas0-openmp is its third configuration (OpenBLAS on torch's OpenMP pool). Installed only as root.
missing=()
for p in python3-threadpoolctl libopenblas0-openmp; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "setup-venv: for the Debian peer's BLAS report and OpenMP configuration: sudo apt-get install --no-install-recommends ${missing[*]}"
  fi
fi
