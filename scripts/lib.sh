# Shared set-up for scripts/run and scripts/test: installs what is missing, says what it does.
# Sourced, not run. Everything here is idempotent: a second run installs nothing.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate pinned in Cargo.toml
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

# Each step says when it starts, in seconds since the script started (where CI spends its time).
say() { printf '\033[1;34m==>\033[0m [%4d s] \033[1m%s\033[0m\n' "$SECONDS" "$*" >&2; }
warn() { printf '\033[1;33m!!!\033[0m \033[1m%s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31mxxx\033[0m \033[1m%s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup first (https://rustup.rs)."
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "Adding the Rust target wasm32-unknown-unknown (for the browser half of the app)"
    rustup target add wasm32-unknown-unknown
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (once; about 15 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    # Without --locked: its lockfile pins a crate version the registry no longer offers.
    say "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once; about 2 minutes)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

ensure_node_packages() {
  if ! command -v npm >/dev/null; then
    say "Installing Node.js and npm from Debian"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  fi
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] || [ ! -x "$ROOT/node_modules/.bin/playwright" ] \
    || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    say "Installing node packages (binaryen's wasm-opt, Playwright, Monaco)"
    (cd "$ROOT" && npm ci --no-audit --no-fund)
  fi
}

# The official `openai` Python client, for the OpenAI-compatible endpoint's tests
# (server/tests/openai_api.rs), in a virtual environment outside the clone.
ensure_python_client() {
  local venv="$HOME/.cache/async-coder/venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
    say "Installing the openai Python client into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'openai>=1.50,<3'
  fi
  export ASYNC_CODER_PYTHON="$venv/bin/python"
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    say "Installing Debian's Chromium (for the browser tests)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  fi
  # Bubblewrap: the sandbox that runs projects' commands (server/sandbox) and its escape tests.
  if [ ! -x /usr/bin/bwrap ]; then
    say "Installing Debian's bubblewrap (the sandbox for projects' commands)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap
  fi
  # HAProxy: the load balancer the multi-instance tests start in front of several servers.
  if [ ! -x /usr/sbin/haproxy ]; then
    say "Installing Debian's HAProxy (the balancer of the multi-instance tests)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy
  fi
}

# Monaco's files are served from /monaco (public/monaco, built from npm's monaco-editor by
# scripts/build-monaco.mjs; never committed). Built again when Monaco, the entry or the build
# script changed.
ensure_monaco_assets() {
  local stamp
  stamp=$(cat "$ROOT/node_modules/monaco-editor/package.json" "$ROOT/app/src/editor/monaco-entry.js" "$ROOT/app/src/editor/binding.js" "$ROOT/app/src/editor/early.js" \
    "$ROOT/scripts/build-monaco.mjs" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$ROOT/public/monaco/STAMP" 2>/dev/null)" != "$stamp" ]; then
    say "Building Monaco into public/monaco (scripts/build-monaco.mjs)"
    (cd "$ROOT" && node scripts/build-monaco.mjs public/monaco)
    echo "$stamp" > "$ROOT/public/monaco/STAMP"
  fi
}

build_release() {
  ensure_monaco_assets
  say "Building the release server and WebAssembly bundle (cargo leptos build --release --split --precompress)"
  # --split: the lazily loaded routes (app/src/pages/lazy.rs) become WebAssembly chunks of their
  # own, fetched when a page needs them. Every WebAssembly build of this app needs it (debug ones
  # too): a `#[lazy]` function imports the chunk loader that only --split generates.
  # --precompress: brotli (quality 11) and gzip copies of every static file, made once here and
  # served as they are to browsers that accept them.
  (cd "$ROOT" && cargo leptos build --release --split --precompress)
}
