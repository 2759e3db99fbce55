#!/usr/bin/env bash
# device-bench.sh: one-command GPU check of the ORT engine on a Linux machine with an NVIDIA GPU and no network.
#
#   scripts/gpu/device-bench.sh              ORT webgpu, ORT cpu (all cores), PyTorch CUDA (if python3 has it)
#   scripts/gpu/device-bench.sh --cpu-only   dry run without a GPU: ORT cpu + PyTorch cpu at a reduced size
#   scripts/gpu/device-bench.sh --pack DIR   copy what the check needs into DIR (run here, then carry DIR)
#   scripts/gpu/device-bench.sh --help
#
# What it measures (scripts/bench/device.ts): SmolLM2-135M's shape (hidden 576, 30 layers, 9 / 3 heads, vocab
# 49,152), an SFT step and a DPO step of 8 × 128 tokens with AdamW, and sampling at batch 64 (32-token prompts,
# 32 new tokens), on each contender in a process of its own, taking turns for 3 rounds; then the ratios and the
# goal: ORT webgpu ≥ 5x ORT on all CPU cores and ≥ 0.5x PyTorch CUDA on the same step. Designed to finish in
# under 8 minutes: the whole run is under `timeout 470` (7 min 50 s); pass --rounds 1 to shorten it.
#
# What must be on the GPU machine (no network needed there):
#   - Node.js ≥ 20 (node on PATH, or NODE=/path/to/node). Not in the carried folder: the node binary is ~95 MiB
#     (~25 MiB xz-compressed); carry it too where the machine has none.
#   - the NVIDIA driver with its Vulkan ICD (nvidia_icd.json; if only libGLX_nvidia.so.0 is there, this script
#     writes the ICD file itself) and the Vulkan loader libvulkan.so.1 (if the system has none, --pack copies
#     the one of scripts/gpu/setup-lavapipe.sh into DIR/.tools/vulkan-loader/, 0.5 MiB, which is used then);
#   - optional: python3 with torch built for CUDA (PYTHON=/path/to/python3 to choose), for the PyTorch ratio.
# What --pack DIR copies (the TypeScript sources, run through tsx; no build step):
#   src/core/, src/shared/, scripts/bench/, scripts/gpu/device-bench.sh, package.json, tsconfig.json, the
#   Vulkan loader (above) and the linux-x64 parts of node_modules: onnxruntime-node (linux/x64 binaries only,
#   with the WebGPU EP), onnxruntime-common, protobufjs, long, @huggingface/jinja, tsx, esbuild (without its
#   command-line binary) and @esbuild/linux-x64.
# Measured on 2026-11-26: 64,880,872 bytes = 61.9 MiB (`du -sb DIR`; `du -sh --apparent-size` 62M, plain
# `du -sh` 64M as it counts whole 4 KiB blocks): onnxruntime-node's linux-x64 binaries 45 MiB, esbuild 11 MiB,
# the rest 6 MiB; under the 64 MiB a device machine is given. The dry run above works from such a folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

cpu_only=0
pack=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --cpu-only) cpu_only=1; args+=("$1") ;;
    --pack) pack="${2:?--pack needs a folder}"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

if [ -n "$pack" ]; then
  mkdir -p "$pack"
  pack="$(cd "$pack" && pwd)"
  cd "$here"
  mkdir -p "$pack/scripts/gpu" "$pack/node_modules/@esbuild"
  mkdir -p "$pack/src" && cp -r src/core src/shared "$pack/src/" && cp package.json tsconfig.json "$pack/"
  cp -r scripts/bench "$pack/scripts/"
  cp scripts/gpu/device-bench.sh "$pack/scripts/gpu/"
  mkdir -p "$pack/node_modules/@huggingface"
  for m in onnxruntime-common protobufjs long @huggingface/jinja tsx esbuild @esbuild/linux-x64; do
    rm -rf "$pack/node_modules/$m" && cp -r "node_modules/$m" "$pack/node_modules/$m"
  done
  # esbuild/bin/esbuild is the command-line copy of @esbuild/linux-x64's binary (11 MiB); tsx uses the JS API.
  rm -rf "$pack/node_modules/esbuild/bin"
  # onnxruntime-node without the binaries of other platforms (288 MiB → 46 MiB).
  rm -rf "$pack/node_modules/onnxruntime-node"
  mkdir -p "$pack/node_modules/onnxruntime-node/bin/napi-v6/linux"
  (cd node_modules/onnxruntime-node && cp -r $(ls -A | grep -v '^bin$') "$pack/node_modules/onnxruntime-node/")
  cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$pack/node_modules/onnxruntime-node/bin/napi-v6/linux/"
  loader=".tools/lavapipe/root/usr/lib/x86_64-linux-gnu/libvulkan.so.1"
  if [ -e "$loader" ]; then
    mkdir -p "$pack/.tools/vulkan-loader" && cp -L "$loader" "$pack/.tools/vulkan-loader/libvulkan.so.1"
  fi
  echo "device-bench: packed into $pack: $(du -sh "$pack" | cut -f1) (du -sh); carry it, then run $pack/scripts/gpu/device-bench.sh"
  exit 0
fi

cd "$here"
NODE="${NODE:-node}"
command -v "$NODE" >/dev/null || { echo "device-bench: node not found (set NODE=/path/to/node)" >&2; exit 1; }
[ -e node_modules/tsx/dist/cli.mjs ] || { echo "device-bench: node_modules/tsx missing (see --help: what to carry)" >&2; exit 1; }

# The Python whose torch the peer uses: $PYTHON, else the first of python3 on PATH and /usr/bin/python3 that has
# torch (with CUDA, unless --cpu-only).
probe="import torch"
[ $cpu_only = 1 ] || probe="import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  python=python3
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c "$probe" 2>/dev/null; then python="$p"; break; fi
  done
fi

if [ $cpu_only = 0 ]; then
  command -v nvidia-smi >/dev/null && echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  # The Vulkan loader: the system's, else the one --pack carried (only the loader, not lavapipe's software driver).
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
    if [ -e .tools/vulkan-loader/libvulkan.so.1 ]; then
      export LD_LIBRARY_PATH="$here/.tools/vulkan-loader${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      echo "Vulkan loader: $here/.tools/vulkan-loader/libvulkan.so.1 (the system has none)"
    else
      echo "device-bench: WARNING: no libvulkan.so.1 on this system; ORT webgpu will find no adapter" >&2
    fi
  fi
  # NVIDIA's Vulkan ICD: where the driver has its library but no ICD file (containers without the graphics
  # capability), write one.
  if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
    if ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0 '; then
      icd="$(mktemp -d)/nvidia_icd.json"
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3.0"}}\n' >"$icd"
      export VK_ICD_FILENAMES="$icd" VK_DRIVER_FILES="$icd"
      echo "Vulkan ICD: wrote $icd (libGLX_nvidia.so.0; the driver has no ICD file)"
    else
      echo "device-bench: WARNING: no NVIDIA Vulkan ICD found; ORT webgpu may find no adapter or a software one" >&2
    fi
  fi
  case "${VK_ICD_FILENAMES:-}" in *lvp*) echo "device-bench: WARNING: VK_ICD_FILENAMES names lavapipe, a software GPU" >&2 ;; esac
fi

exec timeout 470 "$NODE" node_modules/tsx/dist/cli.mjs scripts/bench/device.ts --python "$python" ${args[@]+"${args[@]}"}
