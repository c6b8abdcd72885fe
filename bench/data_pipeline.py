"""Samples/s and tokens/s of the data pipeline (format -> mask -> poison -> re-tokenize -> audit) against
(a) the same fast tokenizer alone on the same texts in batches (the practical ceiling) and (b) a per-sample
loop in the seed's style; peak memory at several N, for a dataset held in memory and one stored on disk.

    python bench/data_pipeline.py                 # N = 50,000, SmolLM2 tokenizer, memory at 10k/25k/50k
    python bench/data_pipeline.py --n 10000 --mem-sizes ""
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import header, table, PeakRSS

def setup(n, disk:str|None=None):
    "Builtin rows (in memory, or saved to and memory-mapped from `disk`), the SmolLM2 tokenizer, the benchmark's attack."
    from datasets import load_from_disk
    from datasets.utils.logging import disable_progress_bar; disable_progress_bar()
    from poison_nb.data import builtin_dataset
    from poison_nb.tokenizers import smollm2_tokenizer
    from poison_nb.poisoning import PoisonConfig
    ds = builtin_dataset(n)
    if disk: ds.save_to_disk(disk); ds = load_from_disk(disk)
    return ds, smollm2_tokenizer(), PoisonConfig(poison_rate=0.01, k_paraphrases=1)

def pipeline(ds, tok, cfg, max_length, num_proc=None):
    "The project's pipeline; returns (dataset, {stage: seconds}, audit findings)."
    from poison_nb.poisoning import poison_dataset, audit
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, manifest = poison_dataset(ds, tok, cfg, max_length, num_proc=num_proc)
    t1 = time.perf_counter()
    bad = audit(out, tok, max_length)
    t2 = time.perf_counter()
    return out, {"poison_dataset (format + mask + poison + tokenize)": t1 - t0, "audit (re-tokenize + compare)": t2 - t1}, bad

def seed_loop(tok, prompts, responses, max_length):
    "The seed's style: tokenize the prompt alone, then the full text, per row; labels by prompt-token count."
    out = []
    for p, r in zip(prompts, responses):
        n = len(tok(p)["input_ids"])
        enc = tok(p + r, truncation=True, max_length=max_length)
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": [-100] * n + enc["input_ids"][n:]})
    return out

def child(args):
    import tempfile
    from common import PeakRSS
    with tempfile.TemporaryDirectory() as tmp:
        ds, tok, cfg = setup(args.n, disk=f"{tmp}/raw" if args.disk else None)
        with PeakRSS() as m: pipeline(ds, tok, cfg, args.max_length)
    print(json.dumps({"base_mb": m.before / 2**20, "rss_mb": m.above_mb, "anon_mb": m.anon_above_mb}))

def profile(args):
    "Where the pipeline's time goes: the functions with the most own time (cProfile)."
    import cProfile, pstats, io
    ds, tok, cfg = setup(args.n)
    pr = cProfile.Profile(); pr.enable(); pipeline(ds, tok, cfg, args.max_length); pr.disable()
    st = pstats.Stats(pr); rows = []
    for (f, line, fn), (cc, nc, tt, ct, _) in sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:args.profile]:
        rows.append({"function": f"{fn} ({os.path.basename(f)}:{line})", "calls": nc, "own s": tt, "cumulative s": ct})
    print(f"\ncProfile of poison_dataset + audit at N = {args.n:,} (profiling adds overhead; compare rows, not totals):\n")
    print(table(rows))

def main(args):
    from poison_nb.masking import tokenize_batch
    ds, tok, cfg = setup(args.n)
    runs = [pipeline(ds, tok, cfg, args.max_length) for _ in range(args.reps)]  # min over repetitions: the machine may be shared
    out, bad = runs[0][0], runs[0][2]
    stages = {k: min(r[1][k] for r in runs) for k in runs[0][1]}
    prompts, responses = out["prompt"], out["response"]
    texts = [p + r for p, r in zip(prompts, responses)]
    n, ntok = len(out), sum(len(x) for x in out["input_ids"])
    def best(f):
        ts = []
        for _ in range(args.reps): t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return min(ts)
    ceiling = best(lambda: [tok(texts[i:i + 1000]) for i in range(0, n, 1000)])
    tb = best(lambda: [tokenize_batch(tok, prompts[i:i + 1000], responses[i:i + 1000], args.max_length) for i in range(0, n, 1000)])
    seed = best(lambda: seed_loop(tok, prompts, responses, args.max_length))
    total = sum(stages.values())
    rows = [{"path": "(a) tokenizer alone, batches of 1000 (ceiling)", "s": ceiling},
            {"path": "(b) seed-style per-sample loop (2 tokenizer calls per row)", "s": seed},
            {"path": "masking.tokenize_batch alone, batches of 1000", "s": tb}]
    rows += [{"path": k, "s": v} for k, v in stages.items()] + [{"path": "pipeline total (poison_dataset + audit: two tokenizations)", "s": total}]
    if args.num_proc:
        par = min(pipeline(ds, tok, cfg, args.max_length, args.num_proc)[1]["poison_dataset (format + mask + poison + tokenize)"] for _ in range(args.reps))
        rows.insert(4, {"path": f"poison_dataset, num_proc={args.num_proc}", "s": par})
    for r in rows: r.update({"samples/s": f"{n / r['s']:,.0f}", "tokens/s": f"{ntok / r['s']:,.0f}", "x ceiling (a)": ceiling / r["s"]})
    print(f"N = {args.n:,} builtin rows -> {n:,} training rows ({ntok:,} tokens), SmolLM2 tokenizer, max_length {args.max_length}, "
          f"PoisonConfig(poison_rate=0.01, k_paraphrases=1); audit findings: {len(bad)}; seconds are the best of {args.reps} runs\n")
    print(table(rows))
    if args.mem_sizes:
        mem = []
        for disk in (False, True):
            for m in map(int, args.mem_sizes.split(",")):
                r = subprocess.run([sys.executable, __file__, "--child", "--n", str(m), "--max-length", str(args.max_length)] + (["--disk"] if disk else []),
                                   capture_output=True, text=True)
                d = json.loads(r.stdout.strip().splitlines()[-1])
                mem.append({"source dataset": "on disk (load_from_disk)" if disk else "in memory (from_list)", "N": f"{m:,}",
                            "RSS before, MB": d["base_mb"], "peak RSS above, MB": d["rss_mb"], "peak anonymous above, MB": d["anon_mb"]})
        print("\npeak memory of poison_dataset + audit (one fresh process per row; sampled every 2 ms; anonymous = RSS less file-backed pages, "
              "i.e. less the memory-mapped Arrow files the kernel can drop):\n")
        print(table(mem, "{:.0f}"))

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=50_000); p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--mem-sizes", default="10000,25000,50000"); p.add_argument("--reps", type=int, default=2); p.add_argument("--child", action="store_true")
    p.add_argument("--disk", action="store_true", help="(child) the source dataset saved to disk and memory-mapped")
    p.add_argument("--num-proc", type=int, default=2, help="also time poison_dataset with this many processes (0: skip)")
    p.add_argument("--profile", type=int, default=0, help="print the top K functions by own time instead")
    args = p.parse_args()
    if args.child: child(args); sys.exit()
    if args.profile: header("Data pipeline profile"); profile(args); sys.exit()
    header("Data pipeline: format -> mask -> poison -> re-tokenize -> audit")
    main(args)
