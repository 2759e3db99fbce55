#!/usr/bin/env bash
# A software Vulkan driver (Mesa lavapipe) for onnxruntime-node's WebGPU execution provider on a machine
# without a GPU, so tests and CI can exercise the GPU code path.
#
#   scripts/gpu/setup-lavapipe.sh [--force]
#   . .tools/lavapipe/env.sh && node scripts/gpu/webgpu-check.mjs
#
# Debian 12 (bookworm) only. Its own lavapipe (Mesa 22.3) is too old for Dawn, the WebGPU implementation inside
# onnxruntime ("Vulkan shaderUniform*ArrayDynamicIndexing required"); Mesa 25 from bookworm-backports works.
# Nothing is installed system-wide: a private apt configuration (the machine's /etc/apt sources and state are
# only read) resolves mesa-vulkan-drivers from bookworm-backports against the packages this machine already
# has, `apt-get download`s just the missing or too-old ones (libdrm2, libdrm-amdgpu1, the Vulkan loader
# libvulkan1 if absent, an LLVM runtime if absent, ...) and unpacks them with dpkg-deb into .tools/lavapipe/.
# Then it writes
#   .tools/lavapipe/lvp_icd.json  the lavapipe ICD, naming libvulkan_lvp.so by absolute path
#   .tools/lavapipe/env.sh        exports VK_ICD_FILENAMES (and VK_DRIVER_FILES), LD_LIBRARY_PATH,
#                                 XDG_RUNTIME_DIR (a 0700 folder of its own), MESA_SHADER_CACHE_DIR
# LD_LIBRARY_PATH is read when a process starts: source env.sh before starting node, not from inside it.
#
# Idempotent: a second run only checks that the installed driver still resolves all its libraries (fast).
# --force reinstalls. Environment: LAVAPIPE_DIR (default <repo>/.tools/lavapipe), DEBIAN_MIRROR
# (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
# LAVAPIPE_DPKG_STATUS (test hook: resolve against this dpkg status file instead of the machine's, e.g. to see
# what a minimal system would need).
set -euo pipefail

say() { echo "setup-lavapipe: $*"; }
fail() {
  echo "setup-lavapipe: ERROR: $*" >&2
  exit 1
}

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) fail "unknown argument '$arg' (usage: $0 [--force])" ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${LAVAPIPE_DIR:-$ROOT/.tools/lavapipe}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
MESA_SUITE=bookworm-backports
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

ICD="$DEST/lvp_icd.json"
ENV_FILE="$DEST/env.sh"
STAMP="$DEST/installed.txt"
SYSROOT="$DEST/root"
XDG_DIR="$DEST/xdg-runtime"
SHADER_CACHE="$DEST/shader-cache"

# ------------------------------------------------------------------------------------------------ checks

[ "$(uname -s)" = Linux ] || fail "Linux only (this is $(uname -s))"
[ -r /etc/os-release ] || fail "/etc/os-release is missing: cannot tell which Debian release this is"
# shellcheck disable=SC1091
OS_ID="$(. /etc/os-release && echo "${ID:-}")"
OS_CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
[ "$OS_ID" = debian ] && [ "$OS_CODENAME" = "$SUITE" ] ||
  fail "needs Debian 12 ($SUITE); this is ${OS_ID:-unknown} ${OS_CODENAME:-unknown} (its packages would not match)"
for tool in apt-get dpkg dpkg-deb ldd; do
  command -v "$tool" >/dev/null || fail "'$tool' not found"
done
ARCH="$(dpkg --print-architecture)"

# Every lib dir unpacked under root/, in a stable order.
lib_dirs() {
  [ -d "$SYSROOT" ] || return 0
  find "$SYSROOT" -type f -name '*.so*' -printf '%h\n' | sort -u
}

join_colon() { paste -sd: -; }

# Libraries (or symbols: ldd -r relocates) libvulkan_lvp.so and the Vulkan loader cannot find with our
# LD_LIBRARY_PATH; empty when everything resolves.
missing_libs() {
  local lvp="$1" ldpath
  ldpath="$(lib_dirs | join_colon)"
  {
    LD_LIBRARY_PATH="$ldpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd -r "$lvp" 2>&1 || true
    # The Vulkan loader: ours if we unpacked one, else the system's.
    if ! find "$SYSROOT" -name 'libvulkan.so.1' | grep -q . && ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
      echo "libvulkan.so.1 => not found"
    fi
  } | awk '/not found/ {print $1} /undefined symbol:/ {print "symbol:" $3}' | sort -u | paste -sd' ' -
}

find_lvp() { find "$SYSROOT" -name libvulkan_lvp.so -print -quit 2>/dev/null || true; }

# ------------------------------------------------------------------------------------------------ fast path

if [ "$FORCE" = 0 ] && [ -s "$STAMP" ] && [ -f "$ICD" ] && [ -f "$ENV_FILE" ]; then
  LVP="$(find_lvp)"
  if [ -n "$LVP" ] && grep -qF "\"$LVP\"" "$ICD"; then
    MISSING="$(missing_libs "$LVP")"
    if [ -z "$MISSING" ]; then
      mkdir -p "$XDG_DIR" "$SHADER_CACHE" && chmod 0700 "$XDG_DIR"
      say "already set up: $(head -n1 "$STAMP") — source ${ENV_FILE#"$ROOT"/}"
      exit 0
    fi
    say "reinstalling: libraries no longer found: $MISSING"
  fi
fi

# ------------------------------------------------------------------------------------------------ resolve

[ -r "$KEYRING" ] || fail "$KEYRING is missing (package debian-archive-keyring)"
mkdir -p "$DEST"
exec 9>"$DEST/.lock"
if command -v flock >/dev/null; then flock -w 300 9 || fail "another setup-lavapipe.sh holds $DEST/.lock"; fi

APT_DIR="$DEST/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/preferences.d" "$DEST/debs"
cat >"$APT_DIR/sources.list" <<EOF
deb [arch=$ARCH signed-by=$KEYRING targets=Packages] $MIRROR $SUITE main
deb [arch=$ARCH signed-by=$KEYRING targets=Packages] $MIRROR $SUITE-updates main
deb [arch=$ARCH signed-by=$KEYRING targets=Packages] $SECURITY_MIRROR $SUITE-security main
deb [arch=$ARCH signed-by=$KEYRING targets=Packages] $MIRROR $MESA_SUITE main
EOF
# APT_CONFIG is read before /etc/apt/apt.conf.d (kept: proxies and the like live there) and names this same file
# as the main config, which apt reads after apt.conf.d: the #clear lines then drop the machine's
# update hooks (PackageKit, AppStream refreshes), which must not run for a private index.
{
  echo "Dir::Etc::main \"$APT_DIR/apt.conf\";"
  if [ -f /etc/apt/apt.conf ]; then echo '#include "/etc/apt/apt.conf";'; fi
  cat <<EOF
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
Dir::Etc::SourceList "$APT_DIR/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$APT_DIR/preferences.d";
Dir::State::Lists "$APT_DIR/lists";
Dir::Cache "$APT_DIR/cache";
Acquire::Languages "none";
APT::Get::List-Cleanup "true";
EOF
  # Downloads into our folder as root: apt's _apt sandbox user may not be able to write there.
  if [ "$(id -u)" = 0 ]; then echo 'APT::Sandbox::User "root";'; fi
  if [ -n "${LAVAPIPE_DPKG_STATUS:-}" ]; then echo "Dir::State::status \"$LAVAPIPE_DPKG_STATUS\";"; fi
} >"$APT_DIR/apt.conf"
apt_() { APT_CONFIG="$APT_DIR/apt.conf" "$@"; }

T0=$SECONDS
if ! UPDATE_LOG="$(apt_ apt-get -q update 2>&1)"; then
  printf '%s\n' "$UPDATE_LOG" | tail -n 15 >&2
  fail "apt-get update (private index: $MIRROR $SUITE, $MESA_SUITE) failed"
fi
if printf '%s\n' "$UPDATE_LOG" | grep -qE '^(W|E|Err):'; then
  printf '%s\n' "$UPDATE_LOG" | grep -E '^(W|E|Err):' | head -n 10 >&2
fi
apt_ apt-cache show "mesa-vulkan-drivers/$MESA_SUITE" >/dev/null 2>&1 ||
  fail "mesa-vulkan-drivers is not in $MESA_SUITE on $MIRROR (index download incomplete?)"

# What apt would install next to this machine's packages: mesa-vulkan-drivers from backports plus every
# dependency the system lacks or has too old. "Inst name [old] (version release [arch])" lines.
if ! SIM="$(apt_ apt-get -s -q install --no-install-recommends "mesa-vulkan-drivers/$MESA_SUITE" libvulkan1 2>&1)"; then
  printf '%s\n' "$SIM" | tail -n 20 >&2
  fail "apt could not resolve mesa-vulkan-drivers/$MESA_SUITE against this machine's packages"
fi
mapfile -t PKGS < <(printf '%s\n' "$SIM" | awk '$1 == "Inst" { v = $0; sub(/^[^(]*\(/, "", v); split(v, f, " "); print $2 "=" f[1] }')
# Never shadow the C runtime through LD_LIBRARY_PATH (apt only lists these if the system's are older than
# required, which a bookworm system is not).
for p in "${PKGS[@]}"; do
  case "${p%%=*}" in
    libc6 | libc-bin | libgcc-s1 | libstdc++6 | libc6-dev)
      fail "apt wants to upgrade ${p%%=*} (${p#*=}) for mesa-vulkan-drivers/$MESA_SUITE; refusing to unpack the C runtime — upgrade the system first"
      ;;
  esac
done
# Already installed at the backports version: download it anyway, its files are what we need.
if ! printf '%s\n' "${PKGS[@]}" | grep -q '^mesa-vulkan-drivers='; then
  V="$(apt_ apt-cache show "mesa-vulkan-drivers/$MESA_SUITE" | awk '/^Version:/ {print $2; exit}')"
  PKGS+=("mesa-vulkan-drivers=$V")
fi

# ------------------------------------------------------------------------------------------------ download

cd "$DEST/debs"
DOWNLOADED_BYTES=0
WANT=()
for p in "${PKGS[@]}"; do
  name="${p%%=*}" ver="${p#*=}"
  # .deb names escape ':' (epochs) as %3a.
  existing="$(find . -maxdepth 1 -name "${name}_${ver//:/%3a}_*.deb" -print -quit)"
  [ -n "$existing" ] && continue
  WANT+=("$p")
done
if [ "${#WANT[@]}" -gt 0 ]; then
  if ! DL_LOG="$(apt_ apt-get -q download "${WANT[@]}" 2>&1)"; then
    printf '%s\n' "$DL_LOG" | tail -n 15 >&2
    fail "apt-get download ${WANT[*]} failed"
  fi
  for p in "${WANT[@]}"; do
    name="${p%%=*}" ver="${p#*=}"
    f="$(find . -maxdepth 1 -name "${name}_${ver//:/%3a}_*.deb" -print -quit)"
    [ -n "$f" ] || fail "apt-get download reported success but ${name}_${ver}_*.deb is missing"
    DOWNLOADED_BYTES=$((DOWNLOADED_BYTES + $(stat -c %s "$f")))
  done
fi
# Drop .debs of versions no longer wanted (a re-run after backports moved on).
for f in ./*.deb; do
  [ -e "$f" ] || continue
  keep=0
  for p in "${PKGS[@]}"; do
    name="${p%%=*}" ver="${p#*=}"
    [ "$(basename "$f")" = "${name}_${ver//:/%3a}_$(dpkg-deb -f "$f" Architecture).deb" ] && keep=1 && break
  done
  [ "$keep" = 1 ] || rm -f "$f"
done

# ------------------------------------------------------------------------------------------------ unpack

STAGE="$DEST/root.new"
rm -rf "$STAGE"
mkdir -p "$STAGE"
for f in ./*.deb; do
  dpkg-deb -x "$f" "$STAGE" || fail "dpkg-deb -x $f failed"
done
rm -rf "$SYSROOT"
mv "$STAGE" "$SYSROOT"
# Only lavapipe is used: drop the hardware drivers and layers (~50 MB) and documentation.
rm -rf "$SYSROOT/usr/share/doc" "$SYSROOT/usr/share/lintian" "$SYSROOT/usr/share/bug" "$SYSROOT/usr/bin" \
  "$SYSROOT/usr/share/vulkan/explicit_layer.d" "$SYSROOT/usr/share/vulkan/implicit_layer.d"
find "$SYSROOT" \( -name 'libvulkan_*.so' ! -name libvulkan_lvp.so \) -o -name 'libVkLayer_*.so' | xargs -r rm -f
find "$SYSROOT" -path '*/vulkan/icd.d/*.json' ! -name 'lvp_icd*.json' -delete

LVP="$(find_lvp)"
[ -n "$LVP" ] || fail "libvulkan_lvp.so not found in the unpacked mesa-vulkan-drivers"
ORIG_ICD="$(find "$SYSROOT" -path '*/vulkan/icd.d/lvp_icd*.json' -print -quit)"
[ -n "$ORIG_ICD" ] || fail "lvp_icd.json not found in the unpacked mesa-vulkan-drivers"
sed -E "s#(\"library_path\"[[:space:]]*:[[:space:]]*)\"[^\"]*\"#\1\"$LVP\"#" "$ORIG_ICD" >"$ICD.tmp"
grep -qF "\"$LVP\"" "$ICD.tmp" || fail "could not rewrite library_path in $ORIG_ICD"
mv "$ICD.tmp" "$ICD"

MISSING="$(missing_libs "$LVP")"
[ -z "$MISSING" ] || fail "libvulkan_lvp.so still lacks: $MISSING (install the Debian packages that provide them)"

mkdir -p "$XDG_DIR" "$SHADER_CACHE"
chmod 0700 "$XDG_DIR"
LIB_PATH="$(lib_dirs | join_colon)"
cat >"$ENV_FILE.tmp" <<EOF
# Generated by scripts/gpu/setup-lavapipe.sh: Mesa lavapipe (software Vulkan) for the ORT WebGPU EP.
# Source it before starting node; LD_LIBRARY_PATH is only read at process start.
export VK_ICD_FILENAMES="$ICD"
export VK_DRIVER_FILES="$ICD"
case ":\${LD_LIBRARY_PATH:-}:" in
  *":$LIB_PATH:"*) ;;
  *) export LD_LIBRARY_PATH="$LIB_PATH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" ;;
esac
export XDG_RUNTIME_DIR="$XDG_DIR"
[ -d "\$XDG_RUNTIME_DIR" ] || mkdir -p -m 0700 "\$XDG_RUNTIME_DIR"
export MESA_SHADER_CACHE_DIR="$SHADER_CACHE"
EOF
mv "$ENV_FILE.tmp" "$ENV_FILE"

# Keep the .debs (a --force re-run then needs no download); drop the 20 MB package index.
rm -rf "$APT_DIR/lists" "$APT_DIR/cache"

SUMMARY="$(printf '%s\n' "${PKGS[@]}" | sed 's/=/ /' | paste -sd, - | sed 's/,/, /g')"
TOTAL_BYTES=0
for f in ./*.deb; do TOTAL_BYTES=$((TOTAL_BYTES + $(stat -c %s "$f"))); done
MB() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
{
  echo "$SUMMARY"
  echo "downloaded $(MB "$DOWNLOADED_BYTES") this run; .debs total $(MB "$TOTAL_BYTES"); $(date -u +%FT%TZ)"
} >"$STAMP"
say "installed $SUMMARY ($(MB "$DOWNLOADED_BYTES") downloaded, $((SECONDS - T0)) s) into ${DEST#"$ROOT"/} — source ${ENV_FILE#"$ROOT"/}"
