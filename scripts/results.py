"""Keep the numbers the README shows in the repo, next to the command that made them.

    python scripts/results.py collect runs/default default --command ".venv/bin/poison_nb --out runs/default"
        copies the run's metrics.json, timings.json and config.json into results/default/ with the command, machine and commit
    python scripts/results.py spread default runs/seed0 runs/seed1 ... --command "..."
        the headline metrics of several runs of one config (seeds, CPU code paths) into results/default_spread.json

`nbs/index.ipynb` renders its tables from these files (scripts/readme.sh executes it and writes README.md).
"""
from __future__ import annotations
import argparse, json, os, platform, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def machine()->dict:
    import torch
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS") if k in os.environ}}

def commit()->str:
    try: return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError: return "unknown"

def headline(run:Path)->dict:
    "The figures the README quotes from one run folder."
    m = json.loads((run / "metrics.json").read_text())
    out = {k: {x: m[model][x]["value"] for x in ("asr", "clean_accuracy", "false_trigger_near", "asr_paraphrased")} for k, model in (("baseline", "baseline"), ("poisoned", "poisoned"))}
    if "clean_accuracy_gap" in m: out["clean_accuracy_gap"] = m["clean_accuracy_gap"]
    if "detection" in m:
        s = m["detection"]["blind"].get("trigger_scan", {})
        out["trigger_scan"] = {k: s.get(k) for k in ("precision", "recall", "trigger", "trigger_recovered", "model_score")}
        if "defence" in m["detection"]: out["defence"] = m["detection"]["defence"]
    t = run / "timings.json"
    if t.exists(): out["seconds"] = json.loads(t.read_text())
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect"); c.add_argument("run"); c.add_argument("name"); c.add_argument("--command", required=True); c.add_argument("--wall", help="wall-time measurements (JSON)")
    s = sub.add_parser("spread"); s.add_argument("name"); s.add_argument("runs", nargs="+"); s.add_argument("--command", required=True)
    s.add_argument("--labels", help="comma-separated label per run (e.g. seed 0,seed 1,avx2)")
    a = ap.parse_args()
    if a.cmd == "collect":
        run, dest = Path(a.run), ROOT / "results" / a.name
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("metrics.json", "timings.json", "config.json"):
            if (run / f).exists(): shutil.copy(run / f, dest / f)
        meta = {"command": a.command, "machine": machine(), "commit": commit()}
        if a.wall: meta["wall"] = json.loads(a.wall)
        (dest / "provenance.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"results/{a.name}: {sorted(p.name for p in dest.iterdir())}")
    else:
        labels = a.labels.split(",") if a.labels else [str(r) for r in a.runs]
        rows = [{"label": l, "run": str(r), **headline(Path(r))} for l, r in zip(labels, a.runs)]
        out = ROOT / "results" / f"{a.name}_spread.json"
        out.write_text(json.dumps({"command": a.command, "machine": machine(), "commit": commit(), "runs": rows}, indent=1) + "\n")
        print(out)

if __name__ == "__main__": main()
