"""Where a training step of the default experiment goes: collation, forward, backward and optimizer, for the full-logits loss and
the supervised-only loss, on real length-grouped batches of the default data (`tiny`, batch 16).

    python bench/step_profile.py                 # 60 timed steps per loss after 10 warm-up steps, 2 torch threads
    python bench/step_profile.py --threads 1

Prints a table (milliseconds per step, median over steps) and writes bench/results/step_profile.json.
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60); ap.add_argument("--warmup", type=int, default=10); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", default="bench/results/step_profile.json")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from common import header, table
    from poison_nb.experiment import ExperimentConfig, split_data
    from poison_nb.models import load_model
    from poison_nb.poisoning import clean_dataset
    from poison_nb.collation import InstructionCollator
    from poison_nb.training import supervised_only_loss
    from poison_nb.performance import plan_batches
    header("Where a training step goes (tiny, default data, batch 16)")
    cfg = ExperimentConfig()
    model, tok = load_model("tiny", device="cpu")
    ds = clean_dataset(split_data(cfg)[0], tok, cfg.train.max_length, template=cfg.template).select_columns(["input_ids", "attention_mask", "labels"])
    rows = ds.to_list()
    batches = plan_batches([len(r["input_ids"]) for r in rows], cfg.train.batch_size, "length_grouped")
    coll, opt = InstructionCollator(tok), torch.optim.AdamW(model.parameters(), lr=1e-4)
    out = {}
    for name, loss_fn in (("full logits", lambda b: model(**b).loss), ("supervised only", lambda b: supervised_only_loss(model, b))):
        t = {k: [] for k in ("collate", "forward", "backward", "optimizer")}
        for i, idx in enumerate(batches[:a.warmup + a.steps]):
            t0 = time.perf_counter(); b = coll([rows[j] for j in idx]); t1 = time.perf_counter()
            loss = loss_fn(b); t2 = time.perf_counter(); loss.backward(); t3 = time.perf_counter(); opt.step(); opt.zero_grad(set_to_none=True); t4 = time.perf_counter()
            if i >= a.warmup:
                for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)): t[k].append(v * 1000)
        out[name] = {k: statistics.median(v) for k, v in t.items()}
        out[name]["total"] = sum(out[name].values())
    rows_ = [{"loss": n, **{f"{k} ms": f"{v:.1f}" for k, v in d.items()}} for n, d in out.items()]
    print(table(rows_))
    Path(a.results).parent.mkdir(parents=True, exist_ok=True)
    Path(a.results).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "threads": a.threads, "ms_per_step": out}, indent=1))

if __name__ == "__main__": main()
