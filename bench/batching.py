"""Padding efficiency and `tiny` training tokens/s for four batching strategies: pad to max_length, dynamic padding,
length-grouped, packed (padding-free).

    python bench/batching.py                      # 2,000 builtin rows, batch 16, max_length 128
"""
from __future__ import annotations
import argparse, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from common import header, table, tiny_model

def collate(strategy, tok, feats, max_length):
    from poison_nb.collation import InstructionCollator
    from poison_nb.collation import PackedCollator
    if strategy == "packed": return PackedCollator()(feats)
    if strategy == "max_length":
        pad = lambda f, k, v: f[k] + [v] * (max_length - len(f[k]))
        feats = [{"input_ids": pad(f, "input_ids", tok.pad_token_id), "attention_mask": pad(f, "attention_mask", 0), "labels": pad(f, "labels", -100)} for f in feats]
    return InstructionCollator(tok)(feats)

def main(args):
    from datasets.utils.logging import disable_progress_bar; disable_progress_bar()
    from poison_nb.data import builtin_dataset, format_prompts
    from poison_nb.masking import tokenize_dataset
    from poison_nb.tokenizers import tiny_tokenizer
    from poison_nb.performance import STRATEGIES, plan_batches, padding_efficiency
    tok = tiny_tokenizer()
    ds, _ = tokenize_dataset(format_prompts(builtin_dataset(args.n)), tok, args.max_length)
    feats = ds.select_columns(["input_ids", "attention_mask", "labels"]).to_list()
    lengths = [len(f["input_ids"]) for f in feats]
    print(f"data: builtin_dataset({args.n}), template 'simple', tiny_tokenizer; tokens per sample min {min(lengths)}, "
          f"mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}; batch {args.batch} samples; training: {args.steps} AdamW steps per strategy\n")
    rows = []
    model0, desc = tiny_model(len(tok))
    for s in STRATEGIES:
        batches = plan_batches(lengths, args.batch, s, seed=0)
        eff = padding_efficiency(lengths, batches, s, args.max_length)
        model = type(model0)(model0.config); model.load_state_dict(model0.state_dict()); model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        tensors = [collate(s, tok, [feats[i] for i in b], args.max_length) for b in batches[:args.steps + args.warmup]]
        real, shape_tokens, losses = 0, 0, []
        for k, batch in enumerate(tensors):
            if k == args.warmup: t = time.perf_counter()
            loss = model(**batch).loss; loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
            if k >= args.warmup:
                real += sum(lengths[i] for i in batches[k]); shape_tokens += batch["input_ids"].numel(); losses.append(loss.item())
        dt = time.perf_counter() - t
        rows.append({"strategy": s, "padding efficiency (all batches)": eff, "real tokens/s": f"{real / dt:,.0f}",
                     "tensor tokens/s": f"{shape_tokens / dt:,.0f}", "s/step": dt / args.steps, "mean loss": sum(losses) / len(losses)})
    print(f"model: {desc}\n")
    print(table(rows))
    print("\n(collation is done before timing; real tokens exclude padding; max_length, dynamic and packed train on the same batches, so their losses agree; length_grouped trains on other batches)")

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000); p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128); p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=3); p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    header("Batching: padding efficiency and tiny training throughput")
    main(args)
