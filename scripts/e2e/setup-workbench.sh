#!/usr/bin/env bash
# Installs what the VS Code workbench e2e tests (test/vscode/*.e2e.ts) need, without any download outside the npm
# registry and Debian's apt repositories: Debian's chromium and ripgrep (apt), code-server and @vscode/vsce (npm,
# into .tools/, never into the extension's own dependencies). Idempotent: finished steps are skipped.
# Usage: scripts/e2e/setup-workbench.sh        (env FORCE=1 reinstalls the npm tools)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="$ROOT/.tools"
CS_VERSION=4.100.3
VSCE_VERSION=3.9.2
# code-server's VS Code pins @vscode/ripgrep 1.15.11, whose postinstall fetches this asset from GitHub unless it is
# already in its cache directory, $(os.tmpdir())/vscode-ripgrep-cache-1.15.11/.
RG_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
step() { STEP="$1"; STEP_T=$(date +%s.%N); echo "==> $1"; }
done_step() { echo "    $STEP: $(since "$STEP_T")${1:+ ($1)}"; }
fail() { echo "setup-workbench: FAILED at '$STEP': $*" >&2; exit 1; }
trap 'fail "command failed (exit $?) on line $LINENO"' ERR

[ "$(uname -m)" = x86_64 ] || { STEP=platform; fail "only x86_64 Linux is supported (the ripgrep cache asset is x86_64)"; }
[ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ] || { STEP=node; fail "code-server $CS_VERSION needs Node 20, found $(node --version)"; }

step "apt: chromium ripgrep libkrb5-dev pkg-config"
missing=()
for p in chromium ripgrep libkrb5-dev pkg-config; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# make, g++ and python3 (node-gyp) build code-server's native modules (node-pty, kerberos, spdlog).
for p in make g++ python3; do command -v "$p" >/dev/null || missing+=("$( [ "$p" = g++ ] && echo build-essential || echo "$p")"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || fail "missing ${missing[*]}; install them with apt-get as root"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]}"
  done_step "installed ${missing[*]}"
else
  done_step "already installed"
fi

mkdir -p "$TOOLS/tmp"
# Every npm install below runs with this TMPDIR, so os.tmpdir() in @vscode/ripgrep's postinstall is known.
export TMPDIR="$TOOLS/tmp"

step "ripgrep cache ($RG_ASSET from /usr/bin/rg)"
rg_cache="$TMPDIR/vscode-ripgrep-cache-1.15.11"
if [ -s "$rg_cache/$RG_ASSET" ]; then done_step "already there"; else
  # The postinstall runs `tar xvf ASSET -C bin` and expects bin/rg: the tarball holds rg at its top level.
  mkdir -p "$rg_cache" "$TMPDIR/rg-src" && cp /usr/bin/rg "$TMPDIR/rg-src/rg"
  tar czf "$rg_cache/$RG_ASSET.partial" -C "$TMPDIR/rg-src" rg && mv "$rg_cache/$RG_ASSET.partial" "$rg_cache/$RG_ASSET"
  rm -rf "$TMPDIR/rg-src"
  done_step
fi

# npm install into a folder of its own: a package.json there stops npm from walking up to the extension's. The
# output goes to a log (code-server's is long); its tail is shown when the install fails.
npm_tool() { # dir, package, packages whose install scripts must run (space-separated), more npm install arguments
  local dir="$1" pkg="$2" allow="$3" log="$1/install.log"; shift 3
  mkdir -p "$dir"
  # npm 11 reads install-script approvals from package.json's allowScripts (a notice about unapproved ones in this
  # npm; later ones skip them). It cannot reach the nested installs of code-server's postinstall: if those ever get
  # skipped, the checks after the install say so.
  local entries=""; [ -z "$allow" ] || entries=$(printf '"%s": true, ' $allow)
  printf '{ "name": "e2e-tool", "private": true, "allowScripts": { %s } }\n' "${entries%, }" >"$dir/package.json"
  if ! (cd "$dir" && npm install --no-audit --no-fund --save-exact "$pkg" "$@") >"$log" 2>&1; then
    tail -n 40 "$log" >&2; fail "npm install $pkg (full log: $log)"
  fi
}

CS_DIR="$TOOLS/code-server"
CS_VSCODE="$CS_DIR/node_modules/code-server/lib/vscode"
CS_OK="$CS_DIR/.installed-$CS_VERSION"
step "code-server $CS_VERSION → .tools/code-server"
if [ -f "$CS_OK" ] && [ -z "${FORCE:-}" ]; then done_step "already installed"; else
  rm -f "$CS_OK"
  # code-server's postinstall (sh postinstall.sh) runs `npm install --omit=dev` in lib/vscode and lib/vscode/extensions,
  # which builds the native modules (node-pty, kerberos, spdlog, ...). As root it refuses to run unless
  # npm_config_unsafe_perm=true: npm ≥ 7 dropped that setting, so the environment variable is what reaches the script.
  # No --no-package-lock here: it would reach those nested installs and make them ignore VS Code's shrinkwrap.
  npm_config_unsafe_perm=true npm_config_yes=true npm_tool "$CS_DIR" "code-server@$CS_VERSION" "code-server argon2" --foreground-scripts
  [ -x "$CS_VSCODE/node_modules/@vscode/ripgrep/bin/rg" ] \
    || fail "code-server's postinstall did not run or did not finish (lib/vscode/node_modules/@vscode/ripgrep/bin/rg is missing; log: $CS_DIR/install.log)"
  for m in node-pty/build/Release/pty.node kerberos/build/Release/kerberos.node @vscode/spdlog/build/Release/spdlog.node; do
    [ -f "$CS_VSCODE/node_modules/$m" ] || fail "code-server's native module $m was not built (log: $CS_DIR/install.log)"
  done
  touch "$CS_OK"
  done_step
fi

VSCE_DIR="$TOOLS/vsce"
step "@vscode/vsce $VSCE_VERSION → .tools/vsce"
if [ -f "$VSCE_DIR/.installed-$VSCE_VERSION" ] && [ -z "${FORCE:-}" ]; then done_step "already installed"; else
  # keytar (optional, for publishing credentials) would try to download a prebuilt binary from GitHub.
  npm_tool "$VSCE_DIR" "@vscode/vsce@$VSCE_VERSION" "" --omit=optional
  touch "$VSCE_DIR/.installed-$VSCE_VERSION"
  done_step
fi

step "check"
(cd "$ROOT" && node -e 'require.resolve("playwright-core")') 2>/dev/null \
  || fail "playwright-core is not in the project's node_modules: it is a devDependency (run npm ci)"
# A throw-away HOME: code-server writes ~/.config/code-server/config.yaml and ~/.local/share/code-server on any run.
v=$(HOME="$TMPDIR" node "$CS_DIR/node_modules/code-server/out/node/entry.js" --version | grep -m1 'with Code') || fail "code-server does not start"
done_step "code-server $v, $(chromium --version 2>/dev/null)"
echo "setup-workbench: done in $(since "$T0")"
