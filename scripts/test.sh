#!/usr/bin/env bash
# The whole test suite on a fresh clone: system packages (Jupyter client/nbconvert for the kernel tests,
# Chromium for the widget tests, the classic notebook server for the live round trip), npm dependencies, the
# widget bundle, then node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
/usr/bin/python3 -c 'import jupyter_client, nbclient, nbconvert, nbformat' 2>/dev/null ||
  need_apt+=(python3-jupyter-client python3-nbclient python3-nbconvert python3-nbformat)
/usr/bin/python3 -c 'import notebook' 2>/dev/null || need_apt+=(jupyter-notebook)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# --- queue tests (test/queue, issue 18) -------------------------------------------------------------------
# The tests start their own redis-server on 127.0.0.1 (random port, no persistence) and stop it; only the
# binary is needed. Debian's package enables a system-wide Redis: disabled again, nothing is left running.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server (test/queue starts a private instance on 127.0.0.1)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
# --- end queue tests ---------------------------------------------------------------------------------------

if [ ! -d node_modules/@tensorflow/tfjs-core ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "test.sh: installing npm dependencies"
  npm install --no-audit --no-fund
fi

if node -e 'process.exit(require("./package.json").scripts["build:widgets"] ? 0 : 1)'; then
  echo "test.sh: building the widget bundle"
  npm run --silent build:widgets
fi

echo "test.sh: type check"
npx tsc -p tsconfig.json --noEmit

echo "test.sh: running tests"
# Two files at a time: the machine has 2 cores and the wasm backend uses 2 threads per process.
# (node 20's runner takes no glob patterns: bash expands them.)
shopt -s globstar nullglob
files=(test/**/*.test.ts)
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
