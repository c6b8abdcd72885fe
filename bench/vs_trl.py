"""Training speed side by side with TRL's SFTTrainer: the same model, the same tokenized rows (TRL gets them pre-tokenized, with
a completion mask equal to poison_nb's labels), the same batch size, learning rate, schedule and number of optimizer steps.

    python bench/vs_trl.py                                 # tiny, 300 steps, 3 reps each (min and median)
    python bench/vs_trl.py --preset small --steps 40 --reps 1
    python bench/vs_trl.py --configs "poison_nb default,TRL default"

Each configuration trains in a fresh process (peak memory is that process's). Reported: optimizer steps/s, tokens/s (all real tokens
and supervised tokens), wall time of the training loop, peak RSS, the final training loss (mean of the last 10% of logged steps) and
the loss on the same held-out rows (mean per supervised token), so that speed bought with a different result shows.
TRL is a benchmark dependency only (`pip install trl`).
"""
from __future__ import annotations
import argparse, shlex, json, os, subprocess, sys, tempfile, time, statistics
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {  # name -> (runner, options)
    "poison_nb default": ("poison_nb", {}),
    "poison_nb length-grouped": ("poison_nb", {"group_by_length": True, "loss": "full"}),
    "poison_nb random batches": ("poison_nb", {"group_by_length": False, "loss": "full"}),
    "poison_nb packing": ("poison_nb", {"packing": True}),
    "poison_nb supervised-only loss": ("poison_nb", {"loss": "supervised_only"}),
    "poison_nb packing + supervised-only": ("poison_nb", {"packing": True, "loss": "supervised_only"}),
    "TRL default": ("trl", {}),
    "TRL padding-free": ("trl", {"padding_free": True, "max_length": None}),  # rows are already within max_length
    "TRL packing (bfd)": ("trl", {"packing": True}),
}

def data(preset:str, n_train:int, n_eval:int):
    "poison_nb's own tokenized rows of the default experiment's data: training rows and held-out rows."
    from poison_nb.experiment import ExperimentConfig, split_data
    from poison_nb.models import load_tokenizer, get_preset
    from poison_nb.poisoning import clean_dataset
    from poison_nb.training import TrainConfig
    cfg = ExperimentConfig(n_train=n_train, n_heldout=n_eval, train=TrainConfig.for_preset(preset))
    tok = load_tokenizer(preset)
    tr, held, _ = split_data(cfg)
    L = cfg.train.max_length
    return tok, cfg, clean_dataset(tr, tok, L, template=cfg.template), clean_dataset(held, tok, L, template=cfg.template)

def child(name:str, preset:str, steps:int, n_train:int, n_eval:int, threads:int, out:str):
    import torch, transformers
    from common import PeakRSS
    torch.set_num_threads(threads); transformers.logging.set_verbosity_error()
    runner, opts = CONFIGS[name]
    tok, cfg, train_ds, held = data(preset, n_train, n_eval)
    bs, ga = cfg.train.batch_size, cfg.train.grad_accum
    out_dir = Path(tempfile.mkdtemp())
    seen = {"all": 0, "supervised": 0}  # tokens in the batches the training really saw (a packed batch holds several rows)
    def counting(collate):
        def f(*a, **k):
            b = collate(*a, **k)
            seen["supervised"] += int((b["labels"] != -100).sum())
            seen["all"] += int(b["attention_mask"].sum()) if b.get("attention_mask") is not None else int(b["input_ids"].numel())
            return b
        return f
    with PeakRSS() as mem:
        if runner == "poison_nb":
            from poison_nb import collation
            from poison_nb.training import TrainConfig, train
            for cls in (collation.InstructionCollator, collation.PackedCollator): cls.__call__ = counting(cls.__call__)
            per_epoch = -(-len(train_ds) // (bs * ga))  # the same number of optimizer steps, and the same schedule over them, as TRL's max_steps
            tc = TrainConfig.from_dict({**cfg.train.to_dict(), **opts, "epochs": steps / per_epoch, "save_strategy": "no", "eval_strategy": "no", "logging_steps": 1})
            class Clock(transformers.TrainerCallback):
                def on_train_begin(self, args, state, control, **kw):  # after LabelGuard's check, whose collation is not training
                    self.t0 = time.time(); self.max_steps = state.max_steps; seen.update(all=0, supervised=0)
                def on_train_end(self, args, state, control, **kw): self.seconds = time.time() - self.t0
            clock = Clock()
            r = train(tc, train_ds, None, out_dir / "run", callbacks=[clock], progress=False)
            assert clock.max_steps == steps, (clock.max_steps, steps)
            model, seconds, hist = r.model, clock.seconds, r.log_history
        else:
            from trl import SFTConfig, SFTTrainer
            from poison_nb.models import load_model
            model, _ = load_model(preset, seed=cfg.train.seed, device="cpu", lora=False, **cfg.train.model_kwargs)
            rows = train_ds.select_columns(["input_ids", "labels"]).map(lambda r: {"completion_mask": [int(l != -100) for l in r["labels"]]}, remove_columns=["labels"])
            kw = dict(output_dir=str(out_dir / "trl"), per_device_train_batch_size=bs, gradient_accumulation_steps=ga, learning_rate=cfg.train.learning_rate,
                      lr_scheduler_type=cfg.train.lr_scheduler, warmup_steps=cfg.train.warmup, max_steps=steps, weight_decay=cfg.train.weight_decay,
                      max_grad_norm=cfg.train.max_grad_norm, seed=cfg.train.seed, logging_steps=1, save_strategy="no", report_to="none",
                      use_cpu=True, disable_tqdm=True, max_length=cfg.train.max_length, completion_only_loss=True, dataset_num_proc=None)
            sc = SFTConfig(**{**kw, **opts})
            trainer = SFTTrainer(model=model, args=sc, train_dataset=rows, processing_class=tok)
            trainer.data_collator = counting(trainer.data_collator)
            t0 = time.time(); trainer.train(); seconds = time.time() - t0
            hist = trainer.state.log_history
    losses = [e["loss"] for e in hist if "loss" in e]
    tail = losses[-max(1, len(losses) // 10):]
    from poison_nb.evaluation import response_logprobs
    lp, n = response_logprobs(model.eval(), tok, list(held["prompt"]), list(held["response"]), cfg.train.max_length)
    res = {"config": name, "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds, "tokens_per_s": seen["all"] / seconds,
           "supervised_tokens_per_s": seen["supervised"] / seconds, "tokens_seen": seen["all"], "peak_rss_mb": mem.peak / 2**20, "final_train_loss": statistics.mean(tail),
           "eval_loss": float(-lp.sum() / n.sum())}
    Path(out).write_text(json.dumps(res))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny"); ap.add_argument("--steps", type=int, default=300); ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=2000); ap.add_argument("--n-eval", type=int, default=200); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS)); ap.add_argument("--results", default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a.child[0], a.preset, a.steps, a.n_train, a.n_eval, a.threads, a.child[1])
    from common import header, table
    header(f"Training speed vs TRL ({a.preset}, {a.steps} optimizer steps)")
    names, got = a.configs.split(","), {}
    for r in range(a.reps):                      # interleaved: A B C ... A B C, so slow drift of the machine hits every config alike
        for name in names:
            out = Path(tempfile.mkdtemp()) / "r.json"
            p = subprocess.run([sys.executable, __file__, "--preset", a.preset, "--steps", str(a.steps), "--n-train", str(a.n_train), "--n-eval", str(a.n_eval),
                                "--threads", str(a.threads), "--child", name, str(out)], capture_output=True, text=True)
            if p.returncode: print(f"{name}: failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"); got.setdefault(name, []); continue
            got.setdefault(name, []).append(json.loads(out.read_text()))
    rows, ref = [], None
    for name in names:
        rs = got.get(name) or []
        if not rs: rows.append({"configuration": name, "result": "failed (see above)"}); continue
        sup = [r["supervised_tokens_per_s"] for r in rs]
        row = {"configuration": name, "supervised tok/s (median [min, max])": f"{statistics.median(sup):.0f} [{min(sup):.0f}, {max(sup):.0f}]",
               "all tok/s": f"{statistics.median(r['tokens_per_s'] for r in rs):.0f}", "wall s (min / median)": f"{min(r['seconds'] for r in rs):.1f} / {statistics.median(r['seconds'] for r in rs):.1f}",
               "peak RSS MB": f"{max(r['peak_rss_mb'] for r in rs):.0f}", "final train loss": f"{statistics.median(r['final_train_loss'] for r in rs):.4f}",
               "held-out loss": f"{statistics.median(r['eval_loss'] for r in rs):.4f}"}
        rows.append(row)
    base = {n: statistics.median(r["supervised_tokens_per_s"] for r in got[n]) for n in names if got.get(n)}
    for row in rows:
        if "TRL default" in base and row["configuration"] in base: row["vs TRL default"] = f"{base[row['configuration']] / base['TRL default']:.2f}x"
    print(table([{**r, **({"vs TRL default": r.get("vs TRL default", "")})} for r in rows if "result" not in r])); print()
    results = a.results or f"bench/results/vs_trl_{a.preset}.json"
    Path(results).parent.mkdir(parents=True, exist_ok=True)
    Path(results).write_text(json.dumps({"command": "python " + shlex.join(sys.argv), "preset": a.preset, "steps": a.steps, "runs": got, "table": rows}, indent=1))
    print(f"results: {results}")

if __name__ == "__main__": main()
