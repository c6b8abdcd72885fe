#!/usr/bin/env bash
# Remake the result files the README renders (results/, bench/results/), each with the command that made it. Run on an idle
# machine: timings are only meaningful without other load. Usage: bash scripts/reproduce.sh default|spread|small|grid|bench|all
#   default: the main job 3 times with /usr/bin/time (min / median wall time, peak RSS); the last run's files go to results/default
#   spread : the same command with --seed 1 and 2, and seed 0 on the AVX2 code path: results/default_spread.json (with the seed-0 run)
#   small  : the pretrained-model headline (SmolLM2-135M-Instruct with its chat template) on the CPU: results/small
#   grid   : bench/detection_grid.py (hours)
#   bench  : bench/vs_trl.py (tiny and small), bench/cpu_paths.py, bench/data_pipeline.py
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${POISON_NB_VENV:-.venv}"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$VENV/bin/python" ]; then . "$VENV/bin/activate"; fi
export TOKENIZERS_PARALLELISM=false
timed() {  # timed OUT_DIR ARGS...: run the main command, append "seconds peak_kb" to OUT_DIR.time
  local out="$1"; shift; rm -rf "$out"
  /usr/bin/time -f "%e %M" -o "$out.time" poison_nb "$@" --out "$out"
}
what="${1:-all}"
# the configurations compared (bench/vs_trl.py --help lists all; the others were slower in earlier runs and cost minutes each)
TINY_CONFIGS="poison_nb default,poison_nb random batches,poison_nb length-grouped,poison_nb packing + supervised-only,TRL default,TRL padding-free,TRL packing (bfd)"
SMALL_CONFIGS="poison_nb default,TRL default,TRL padding-free"
if [ "$what" = default ] || [ "$what" = all ]; then
  for i in 1 2 3; do timed runs/default-$i; done
  wall=$(python -c "import json,sys; r=[open(f'runs/default-{i}.time').read().split() for i in (1,2,3)]; print(json.dumps({'seconds':[float(a) for a,b in r],'peak_rss_mb':[int(b)/1024 for a,b in r]}))")
  python scripts/results.py collect runs/default-3 default --command "poison_nb --out runs/default" --wall "$wall"
fi
if [ "$what" = spread ] || [ "$what" = all ]; then
  timed runs/default-seed1 --seed 1; timed runs/default-seed2 --seed 2
  ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 timed runs/default-avx2
  python scripts/results.py spread default runs/default-3 runs/default-seed1 runs/default-seed2 runs/default-avx2 \
    --labels "seed 0,seed 1,seed 2,seed 0 on the AVX2 code path" \
    --command "poison_nb --out runs/default [--seed 1 | --seed 2 | with ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2]"
fi
if [ "$what" = small ] || [ "$what" = all ]; then
  timed runs/small --preset small --n-train 400 --n-poison 40 --n-heldout 200 --n-eval 100 --epochs 3
  wall=$(python -c "import json; a,b=open('runs/small.time').read().split(); print(json.dumps({'seconds':[float(a)],'peak_rss_mb':[int(b)/1024]}))")
  python scripts/results.py collect runs/small small --command "poison_nb --preset small --n-train 400 --n-poison 40 --n-heldout 200 --n-eval 100 --epochs 3 --out runs/small" --wall "$wall"
fi
if [ "$what" = grid ] || [ "$what" = all ]; then python bench/detection_grid.py --jobs 2 && python bench/scan_phrase_deletion.py; fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  python bench/vs_trl.py --preset tiny --reps 2 --configs "$TINY_CONFIGS" | tee bench/results/vs_trl_tiny.md
  python bench/vs_trl.py --preset small --steps 30 --reps 1 --n-train 400 --configs "$SMALL_CONFIGS" | tee bench/results/vs_trl_small.md
  python bench/step_profile.py | tee bench/results/step_profile.md
  python bench/cpu_paths.py | tee bench/results/cpu_paths.md
  python bench/data_pipeline.py --reps 3 | tee bench/results/data_pipeline.md
  python bench/batching.py | tee bench/results/batching.md
fi
bash scripts/readme.sh
