"""Step time and peak memory of one training step: full logits vs `supervised_only_loss`, on `tiny` and `small`;
plus a GPU tokens/s + MFU path (bf16) that says 'no GPU: skipped' on CPU.

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
    from poison_nb.performance import supervised_only_loss
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

def gpu_bench(args):
    print("\n### GPU tokens/s and MFU (bf16)\n")
    if not torch.cuda.is_available(): print("no GPU: skipped"); return
    from transformers import LlamaConfig, LlamaForCausalLM, AutoConfig
    from poison_nb.performance import training_flops_per_token, peak_tflops, supervised_only_loss
    name = torch.cuda.get_device_name(); peak = args.peak_tflops or peak_tflops(name)
    configs = {"small (SmolLM2-135M shape)": small_model()[0].config,
               "medium (SmolLM2-1.7B shape)": LlamaConfig(vocab_size=49152, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                                                          num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192, tie_word_embeddings=True)}
    rows = []
    for label, cfg in configs.items():
        cfg._attn_implementation = "sdpa"
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        B, T = args.gpu_batch, args.gpu_seq
        ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
        for mode, loss_fn in {"full logits": lambda: model(**batch).loss, "supervised only": lambda: supervised_only_loss(model, batch)}.items():
            def step():
                loss_fn().backward(); opt.step(); opt.zero_grad(set_to_none=True)
            for _ in range(3): step()
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            for _ in range(args.gpu_steps): step()
            torch.cuda.synchronize(); dt = (time.perf_counter() - t) / args.gpu_steps
            tps = B * T / dt
            mfu = tps * training_flops_per_token(cfg, T) / (peak * 1e12) if peak else float("nan")
            rows.append({"config": label, "loss": mode, "batch": f"{B}x{T}", "step s": dt, "tokens/s": f"{tps:,.0f}",
                         "MFU": f"{mfu:.1%}", "peak GPU GB": torch.cuda.max_memory_allocated() / 2**30})
        del model, opt; torch.cuda.empty_cache()
    print(f"card: {name}, peak bf16 {peak} TFLOP/s (labels = all tokens here: this measures the model, not masking)\n")
    print(table(rows))

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="tiny,small"); p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128); p.add_argument("--pad-to", type=int, default=None)
    p.add_argument("--reps", type=int, default=3); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gpu-batch", type=int, default=8); p.add_argument("--gpu-seq", type=int, default=2048)
    p.add_argument("--gpu-steps", type=int, default=10); p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--child", action="store_true"); p.add_argument("--model"); p.add_argument("--mode")
    args = p.parse_args()
    if args.child: child(args); sys.exit()
    torch.set_num_threads(args.threads)
    header("Training step: full logits vs supervised-only loss")
    cpu_bench(args)
    gpu_bench(args)
