#!/usr/bin/env bash
# The test suite on a fresh clone. Two tiers:
#   scripts/test.sh          the whole suite (`npm test`, CI): system packages (Jupyter client/nbconvert for the
#                            kernel tests, Chromium for the widget tests, the classic notebook server for the live
#                            round trip, jupyter_server + jupyterlab_server for the JupyterLab 4 page), npm
#                            dependencies (the JupyterLab 4 harness's too), the widget bundle, the type check,
#                            every test file.
#   scripts/test.sh --fast   `npm run test:fast`, for development: library, models, experiments, kernel protocol;
#                            no Chromium, no notebook executions (nbconvert), no Jupyter server, no type check,
#                            and it installs nothing.
# Never sudo: when the full suite misses packages and we are not root, print the apt-get line and stop.
set -euo pipefail
cd "$(dirname "$0")/.."

tier=full
case "${1:-}" in
  --fast) tier=fast ;;
  "") ;;
  *) echo "test.sh: unknown option '$1' (use --fast or nothing)" >&2; exit 2 ;;
esac

# Test files the fast tier leaves out: they drive Chromium, execute notebooks or start a Jupyter server
# (widgets, notebooks, nbconvert); run whole applications end to end (the demo, the training pipeline, the
# `hopscope run` CLI); or repeat what the fast tier already covers at length (20 repeated sweeps for memory,
# the LLaVA parity file rerun on the other attention path); or start worker processes on a Redis server (the
# queue cluster test) or nbconvert (figures written by a headless notebook run); or check a derivative by
# finite differences over every site (circuit: 90 s of one core, the slowest file of the fast tier).
SLOW_TESTS='^test/(widgets|notebooks|train)/|^test/kernel/nbconvert\.test\.ts$|^test/cli/demo\.test\.ts$'
SLOW_TESTS+='|^test/experiments/cli\.test\.ts$|^test/engine/memory\.test\.ts$|^test/models/attention-paths\.test\.ts$|^test/queue/cluster\.test\.ts$|^test/kernel/figures\.test\.ts$|^test/experiments/circuit\.test\.ts$'

# The Python the kernel tests drive (test/kernel/jupyter-env.ts reads the same variable).
PY="${HOPSCOPE_TEST_PYTHON:-/usr/bin/python3}"
need_apt=()
"$PY" -c 'import jupyter_client, nbclient, nbconvert, nbformat' 2>/dev/null ||
  need_apt+=(python3-jupyter-client python3-nbclient python3-nbconvert python3-nbformat)
if [ "$tier" = full ]; then
  "$PY" -c 'import notebook' 2>/dev/null || need_apt+=(jupyter-notebook)
  # The JupyterLab 4 page of test/widgets/jupyterlab.test.ts is served by Debian's jupyter_server/jupyterlab_server.
  "$PY" -c 'import jupyter_server, jupyterlab_server' 2>/dev/null || need_apt+=(python3-jupyter-server python3-jupyterlab-server)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # test/kernel/figures.test.ts reads the saved PDF figures back with pdftotext.
  command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
  # test/queue starts its own redis-server on 127.0.0.1 (random port, no persistence) and stops it.
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
apt_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${need_apt[*]}"
if [ ${#need_apt[@]} -gt 0 ] && [ "$tier" = fast ]; then
  # The fast tier is for development: it installs nothing; the kernel-protocol tests skip, saying why.
  echo "test.sh: missing ${need_apt[*]}: the kernel-protocol tests will be skipped; to run them: $apt_line" >&2
elif [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: missing system packages: ${need_apt[*]}" >&2
    echo "test.sh: install them as root, then run the tests again:" >&2
    echo "  $apt_line" >&2
    exit 1
  fi
  echo "test.sh: installing system packages: ${need_apt[*]}"
  apt-get update -qq || { echo "test.sh: apt-get update failed (see above)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" ||
    { echo "test.sh: apt-get install ${need_apt[*]} failed (see above)" >&2; exit 1; }
  # Debian's package enables a system-wide Redis; the tests need only the binary, so nothing is left running.
  if [[ " ${need_apt[*]} " == *" redis-server "* ]]; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

if [ "$tier" = fast ]; then
  [ -d node_modules/@tensorflow/tfjs-core ] || { echo "test.sh: no node_modules: run 'npm install' first" >&2; exit 1; }
elif [ ! -d node_modules/@tensorflow/tfjs-core ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "test.sh: installing npm dependencies"
  npm install --no-audit --no-fund
fi

shopt -s globstar nullglob
files=()
# test/lab-harness/node_modules holds other projects' test files.
for f in test/**/*.test.ts; do [[ "$f" == test/lab-harness/* ]] || files+=("$f"); done
if [ "$tier" = full ]; then
  # The JupyterLab 4 application of the real-UI test: its own npm project, pinned by its package-lock.json
  # (~80 s to install, ~20 s to build; test/widgets/jupyterlab.test.ts builds it when stale).
  if [ ! -d test/lab-harness/node_modules/@jupyterlab/application ] || [ test/lab-harness/package-lock.json -nt test/lab-harness/node_modules/.package-lock.json ]; then
    echo "test.sh: installing the JupyterLab 4 test harness (test/lab-harness)"
    (cd test/lab-harness && npm ci --no-audit --no-fund --ignore-scripts)
  fi
  if node -e 'process.exit(require("./package.json").scripts["build:widgets"] ? 0 : 1)'; then
    echo "test.sh: building the widget bundle"
    npm run --silent build:widgets
  fi
  echo "test.sh: type check"
  npx tsc -p tsconfig.json --noEmit
else
  fast=()
  for f in "${files[@]}"; do [[ "$f" =~ $SLOW_TESTS ]] || fast+=("$f"); done
  # Longest files first (the runner starts them in this order, two at a time), so that the two workers finish
  # together instead of one running a 25 s file alone at the end (2m54 instead of 3m09 on 2 idle cores). The
  # full tier keeps its order: which of its browser tests overlap is what its measurements were made with.
  first=()
  rest=()
  for f in "${fast[@]}"; do
    if [[ "$f" =~ ^test/(kernel/(kernel-protocol|conformance|cell-types)|arch/layers)\.test\.ts$ ]]; then first+=("$f"); else rest+=("$f"); fi
  done
  files=("${first[@]}" "${rest[@]}")
fi

echo "test.sh: running ${#files[@]} test files ($tier tier)"
# Two files at a time: the machine has 2 cores and the wasm backend uses 2 threads per process.
# (node 20's runner takes no glob patterns: bash expands them.)
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
