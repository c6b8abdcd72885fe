#!/usr/bin/env bash
# The test suite: the notebooks' inline tests (nbdev_test skips cells flagged notest/slow/cuda), then pytest.
# With CI=true (CI services set it) it first checks what nbdev's own CI checks: nbdev_clean and nbdev_export
# leave no diff, and the docs pre-processing (nbdev_proc_nbs) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# the environment scripts/install.sh made (nothing to activate by hand); an environment already active is used as it is
VENV="${POISON_NB_VENV:-.venv}"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$VENV/bin/python" ]; then . "$VENV/bin/activate"; fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
# nbdev_test runs two notebooks at once on 2 cores: one torch thread each (two threads each oversubscribe the cores and ran up to 7x slower)
export OMP_NUM_THREADS=1
if [ "${CI:-}" = "true" ]; then
  dirty() { git status --porcelain --untracked-files=all -- nbs poison_nb README.md; }
  echo "== nbdev_clean leaves no diff"; nbdev_clean
  if [ -n "$(dirty)" ]; then echo "nbdev_clean changed files: run nbdev_clean and commit"; dirty; git diff | head -40; exit 1; fi
  echo "== nbdev_export leaves no diff"; nbdev_export
  if [ -n "$(dirty)" ]; then echo "library out of sync with the notebooks: run nbdev_export and commit"; dirty; git diff | head -40; exit 1; fi
  echo "== README.md is generated from nbs/index.ipynb"; bash scripts/readme.sh
  if [ -n "$(dirty)" ]; then echo "README.md out of date: run bash scripts/readme.sh and commit"; git diff README.md | head -40; exit 1; fi
  echo "== nbdev_proc_nbs (docs pre-processing; Quarto renders the site on GitHub)"
  # without Quarto, nbdev_proc_nbs tries to download and install it (and re-installs the package); a no-op stub stops that
  if ! command -v quarto >/dev/null; then qshim="$(mktemp -d)"; printf '#!/bin/sh\nexit 0\n' > "$qshim/quarto"; chmod +x "$qshim/quarto"; fi
  PATH="${qshim:+$qshim:}$PATH" nbdev_proc_nbs
fi
echo "== nbdev_test"; nbdev_test --n_workers 2 --timing
echo "== pytest"; python -m pytest tests/ -q -p no:cacheprovider
