#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system tools from Debian, uv, and the
# locked Python environment. Everything the engine, the sandbox and the tests
# need is installed here, so the README's two commands work on a clean box.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_need=()
command -v bwrap >/dev/null 2>&1 || apt_need+=(bubblewrap)    # the sandbox (issue 4)
command -v espeak-ng >/dev/null 2>&1 || apt_need+=(espeak-ng)  # second voice for tests
command -v haproxy >/dev/null 2>&1 || apt_need+=(haproxy)      # scale-out test (tests/deploy)
if [ ${#apt_need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${apt_need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_need[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  python3 -m pip install -q uv
fi

uv sync --frozen --quiet

# The web UI (voco up / voco local): Node packages from the lockfile, then the
# build into web/dist (not committed). Needs Node >= 20.19 for Vite 8.
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found: install Node.js 20 to build the web UI" >&2
  exit 1
fi
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
