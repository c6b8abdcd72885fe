"""Step time and peak memory of one training step: full logits vs `supervised_only_loss`, on `tiny` and `small`
(CPU). GPU tokens/s and MFU: `bench/gpu.py`.

    python bench/loss.py                      # tiny and small, batch 8, real instruction rows (dynamic padding)
    python bench/loss.py --models tiny --reps 10
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from common import header, table, interleaved, med, tiny_model, small_model

def batch_for(name:str, batch_size:int, max_length:int, pad_to:int|None):
    from poison_nb.data import builtin_dataset, format_template
    from poison_nb.masking import tokenize_batch
    from poison_nb.collation import InstructionCollator
    from poison_nb.tokenizers import tiny_tokenizer, smollm2_tokenizer
    tok = tiny_tokenizer() if name == "tiny" else smollm2_tokenizer()
    rows = builtin_dataset(batch_size, seed=1)
    enc = tokenize_batch(tok, [format_template(r["instruction"], r["input"]) for r in rows], list(rows["output"]), max_length)
    feats = [dict(input_ids=i, attention_mask=a, labels=l) for i, a, l in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])]
    if pad_to: feats = [{k: v + [tok.pad_token_id if k == "input_ids" else 0 if k == "attention_mask" else -100] * (pad_to - len(v)) for k, v in f.items()} for f in feats]
    return tok, InstructionCollator(tok)(feats)

def load(name:str, vocab:int):
    return tiny_model(vocab) if name == "tiny" else small_model()

def step_fns(model, batch):
    from poison_nb.training import supervised_only_loss
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    def step(loss_fn):
        def f():
            loss = loss_fn(); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); f.loss = loss.item()
        return f
    return {"full logits": step(lambda: model(**batch).loss), "supervised only": step(lambda: supervised_only_loss(model, batch))}

def child(args):
    "One process per (model, mode): peak RSS of a training step above the RSS before it."
    torch.set_num_threads(args.threads)
    tok, batch = batch_for(args.model, args.batch, args.max_length, args.pad_to)
    model, _ = load(args.model, len(tok)); model.train()
    f = step_fns(model, batch)[args.mode]
    from common import PeakRSS
    f()  # first step allocates gradients and optimizer state; measure the second
    with PeakRSS() as m: f()
    print(json.dumps({"peak_mb": m.above_mb}))

def cpu_bench(args):
    rows = []
    for name in args.models.split(","):
        tok, batch = batch_for(name, args.batch, args.max_length, args.pad_to)
        model, desc = load(name, len(tok)); model.train()
        fns = step_fns(model, batch)
        times = interleaved(fns, args.reps, warmup=1)
        sup = int((batch["labels"][:, 1:] != -100).sum())
        for mode in fns:
            out = subprocess.run([sys.executable, __file__, "--child", "--model", name, "--mode", mode, "--batch", str(args.batch),
                                  "--max-length", str(args.max_length), "--threads", str(args.threads)] + (["--pad-to", str(args.pad_to)] if args.pad_to else []),
                                 capture_output=True, text=True)
            peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"] if out.returncode == 0 else float("nan")
            rows.append({"model": name, "batch (rows x tokens)": "x".join(map(str, batch["input_ids"].shape)), "supervised tokens": sup,
                         "loss": mode, "step s (median)": med(times[mode]), "min s": min(times[mode]), "reps": len(times[mode]),
                         "speedup": med(times["full logits"]) / med(times[mode]), "peak RSS above model, MB": f"{peak:.0f}",
                         "loss value": f"{fns[mode].loss:.6f}"})
        print(f"- {name}: {desc}")
    print()
    print(table(rows))

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="tiny,small"); p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128); p.add_argument("--pad-to", type=int, default=None)
    p.add_argument("--reps", type=int, default=3); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true"); p.add_argument("--model"); p.add_argument("--mode")
    args = p.parse_args()
    if args.child: child(args); sys.exit()
    torch.set_num_threads(args.threads)
    header("Training step: full logits vs supervised-only loss")
    cpu_bench(args)
