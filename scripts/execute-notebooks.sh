#!/usr/bin/env bash
# Re-executes every notebook under notebooks/ in place in the hopscope kernel (nbconvert), so the committed
# notebooks carry their outputs and saved widget state (figures visible without running them).
#   scripts/execute-notebooks.sh                      # all notebooks
#   scripts/execute-notebooks.sh notebooks/labs/*.ipynb
# Needs the teaching models in data/teaching (v5, and lab 4's early / late pair) and Debian's python3-nbconvert (see docs/notebooks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test/notebooks/execute.ts "$@"
