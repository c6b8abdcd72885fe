"""Why a trained `tiny` model differs between CPUs: train the default experiment's baseline on each CPU code path that can be
forced here, and compare the weights after N optimizer steps with those of the machine's default path.

    python bench/cpu_paths.py                       # steps 1, 10, 100, 500 (one whole training of the default), 5 code paths
    python bench/cpu_paths.py --steps 1,10,100      # quicker

Code paths: torch's own vectorized kernels (`ATEN_CPU_CAPABILITY`: default = the best this CPU has, `avx2`, `avx512` where the
CPU has it), the BLAS library's (`MKL_ENABLE_INSTRUCTIONS=AVX2`, the path MKL takes on AMD CPUs), and
`torch.use_deterministic_algorithms(True)`. Each path trains in its own process from the same seed and data; writes
bench/results/cpu_paths.json and prints a table.
"""
from __future__ import annotations
import argparse, shlex, json, os, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PATHS = {"default": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2"}, "avx2 + MKL AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
         "avx512": {"ATEN_CPU_CAPABILITY": "avx512"}, "deterministic": {"POISON_NB_DETERMINISTIC": "1"}}

def child(steps:list[int], out:str):
    "Train the default baseline; save the weights after each of `steps` optimizer steps."
    import torch, transformers
    from poison_nb.experiment import ExperimentConfig, split_data
    from poison_nb.models import load_tokenizer
    from poison_nb.poisoning import clean_dataset
    from poison_nb.training import TrainConfig, train
    if os.environ.get("POISON_NB_DETERMINISTIC"): torch.use_deterministic_algorithms(True)
    cfg = ExperimentConfig()
    tok = load_tokenizer(cfg.train.preset)
    ds = clean_dataset(split_data(cfg)[0], tok, cfg.train.max_length, template=cfg.template)
    snaps = {}
    class Snap(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step in steps: snaps[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if state.global_step >= max(steps): control.should_training_stop = True
    tc = TrainConfig.from_dict({**cfg.train.to_dict(), "save_strategy": "no", "eval_strategy": "no"})
    train(tc, ds, None, Path(out).parent / "run", callbacks=[Snap()], progress=False)
    torch.save({"snaps": snaps, "capability": torch.backends.cpu.get_cpu_capability(), "mkl": torch.backends.mkl.is_available()}, out)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="1,10,100,500"); ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--results", default="bench/results/cpu_paths.json"); ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    steps = [int(x) for x in a.steps.split(",")]
    if a.child: return child(steps, a.child)
    import torch
    from common import header, table
    header("CPU code paths: weights of the default baseline after N steps")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    print(f"CPU: {cpu}; torch's best capability here: {torch.backends.cpu.get_cpu_capability()}; MKL: {torch.backends.mkl.is_available()}; torch threads per process: {torch.get_num_threads()}\n")
    tmp, got = Path(tempfile.mkdtemp()), {}
    for name in a.paths.split(","):
        out = tmp / name.replace(" ", "_").replace("+", "") / "w.pt"; out.parent.mkdir(parents=True)
        p = subprocess.run([sys.executable, __file__, "--steps", a.steps, "--child", str(out)], env={**os.environ, **PATHS[name]}, capture_output=True, text=True)
        if p.returncode: print(f"{name}: failed\n{p.stderr[-2000:]}"); continue
        got[name] = torch.load(out)
    ref = got["default"]["snaps"]
    rows = []
    for name, g in got.items():
        row = {"code path": name, "torch capability": g["capability"]}  # (no timing: this compares weights, and may share the machine)
        for s in steps:
            if s not in g["snaps"] or s not in ref: row[f"max |w - w_default| after {s} steps"] = "n/a (training ended before)"; continue
            d = max((g["snaps"][s][k] - ref[s][k]).abs().max().item() for k in ref[s])
            row[f"max |w - w_default| after {s} steps"] = "0 (bitwise equal)" if d == 0 else f"{d:.1e}"
        rows.append(row)
    print(table(rows))
    Path(a.results).parent.mkdir(parents=True, exist_ok=True)
    Path(a.results).write_text(json.dumps({"command": "python " + shlex.join(sys.argv), "cpu": cpu, "threads": torch.get_num_threads(), "rows": rows}, indent=1))

if __name__ == "__main__": main()
