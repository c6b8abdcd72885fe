"""Speed of the pre-flight check (`poison_nb.check.check_dataset`) against tokenizing the same texts once.

The issue's goal: checking 100,000 rows takes no longer than tokenizing them once. The rows are the builtin dataset,
formatted with `format_prompts` and tokenized with `masking.tokenize_batch` on SmolLM2's tokenizer. Timed, alternating
(A B C D A B C D ...) so that load from other processes falls on every path alike; min and median of `--reps` runs:

- (a) the Rust tokenizer alone on prompt + response (`encode_batch`, no masking, no Python per row): the harshest baseline;
- (b) `masking.tokenize_batch` in batches of 1,000 (tokenize + mask, what a pipeline does once);
- (c) `masking.tokenize_dataset` (b) through `Dataset.map`, Arrow columns written;
- (d) `check_dataset` on the tokenized Dataset held in memory;
- (e) `check_dataset` on it saved to disk and memory-mapped (`load_from_disk`: the `poison_nb check` path);
- (f), (g) `check_dataset` on failing data, where every row takes the slower paths: labels = input_ids (bug 1 in every row),
  and every row's text moved one row on (stale tokens in every row, each matched to the row whose text they spell).

    python bench/check_speed.py                    # N = 100,000, 3 reps, writes bench/results/check_speed.json
    python bench/check_speed.py --n 10000 --reps 2 --out ""
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import header, table, load_line

def setup(n:int, max_length:int):
    "Formatted rows, the SmolLM2 tokenizer, and the tokenized Dataset (in memory)."
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar; disable_progress_bar()
    from poison_nb.data import builtin_dataset, format_prompts
    from poison_nb.tokenizers import smollm2_tokenizer
    from poison_nb.masking import tokenize_batch
    rows = format_prompts(builtin_dataset(n, seed=0)).select_columns(["prompt", "response"])
    tok = smollm2_tokenizer()
    prompts, responses = rows["prompt"], rows["response"]
    out = {k: [] for k in ("input_ids", "attention_mask", "labels")}
    for i in range(0, n, 1000):
        for k, v in tokenize_batch(tok, prompts[i:i + 1000], responses[i:i + 1000], max_length).items(): out[k] += v
    return rows, tok, Dataset.from_dict({"prompt": prompts, "response": responses, **out})

def main(args):
    from datasets import load_from_disk
    from poison_nb.masking import tokenize_batch, tokenize_dataset
    from poison_nb.check import check_dataset
    rows, tok, ds = setup(args.n, args.max_length)
    prompts, responses = rows["prompt"], rows["response"]
    texts = [p + r for p, r in zip(prompts, responses)]
    backend, n, ntok = tok.backend_tokenizer, len(ds), sum(len(x) for x in ds["input_ids"])
    tmp = tempfile.mkdtemp(); ds.save_to_disk(f"{tmp}/ds"); on_disk = load_from_disk(f"{tmp}/ds")
    bug1 = ds.remove_columns("labels").add_column("labels", ds["input_ids"])
    shift = lambda xs: xs[1:] + xs[:1]
    stale = ds.remove_columns(["prompt", "response"]).add_column("prompt", shift(prompts)).add_column("response", shift(responses))
    reports = {}
    paths = {
        "(a) Rust tokenizer alone (encode_batch of prompt + response)": lambda: backend.encode_batch(texts),
        "(b) tokenize_batch (tokenize + mask), batches of 1,000": lambda: [tokenize_batch(tok, prompts[i:i + 1000], responses[i:i + 1000], args.max_length)
                                                                        for i in range(0, n, 1000)],
        "(c) tokenize_dataset (tokenize + mask via Dataset.map)": lambda: tokenize_dataset(rows, tok, args.max_length),
        "(d) check_dataset, Dataset in memory": lambda: reports.__setitem__("memory", check_dataset(ds, tok)),
        "(e) check_dataset, Dataset on disk (load_from_disk)": lambda: reports.__setitem__("disk", check_dataset(on_disk, tok)),
        "(f) check_dataset, bug 1 in every row (labels = input_ids)": lambda: reports.__setitem__("bug1", check_dataset(bug1, tok)),
        "(g) check_dataset, stale tokens in every row": lambda: reports.__setitem__("stale", check_dataset(stale, tok)),
    }
    times = {k: [] for k in paths}
    for _ in range(args.reps):
        for k, f in paths.items(): t = time.perf_counter(); f(); times[k].append(time.perf_counter() - t)
    check_min = min(times["(d) check_dataset, Dataset in memory"])
    out = []
    for k, ts in times.items():
        out.append({"path": k, "min s": min(ts), "median s": statistics.median(ts), "rows/s (min)": f"{n / min(ts):,.0f}",
                    "check (d) / this": check_min / min(ts)})
    rep = reports["memory"]
    print(f"N = {n:,} builtin rows formatted with format_prompts ({ntok:,} tokens), SmolLM2 tokenizer, max_length {args.max_length}; "
          f"{args.reps} runs of each path, alternating; check results: (d) {'PASSED' if rep.ok else 'FAILED'} {rep.counts}, "
          f"(f) {reports['bug1'].counts}, (g) {reports['stale'].counts}\n")
    print(table(out))
    ratios = {"check / tokenizer alone (a)": check_min / min(times[next(iter(times))]),
              "check / tokenize_batch (b)": check_min / min(times["(b) tokenize_batch (tokenize + mask), batches of 1,000"]),
              "check / tokenize_dataset (c)": check_min / min(times["(c) tokenize_dataset (tokenize + mask via Dataset.map)"]),
              "check on disk / tokenize_batch (b)": min(times["(e) check_dataset, Dataset on disk (load_from_disk)"]) /
                                                    min(times["(b) tokenize_batch (tokenize + mask), batches of 1,000"])}
    print("\n" + "\n".join(f"{k}: {v:.2f}" for k, v in ratios.items()))
    if args.out:
        from poison_nb.performance import machine
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"command": "python " + " ".join(sys.argv), "machine": machine(), "load": load_line(), "n_rows": n, "n_tokens": ntok,
                       "max_length": args.max_length, "reps": args.reps, "seconds": times, "ratios": ratios,
                       "check": {k: {"ok": r.ok, "counts": r.counts} for k, r in reports.items()}}, f, indent=1)
            f.write("\n")
        print(f"\nwritten to {args.out}")

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000); p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "check_speed.json"))
    args = p.parse_args()
    header("Pre-flight check vs tokenizing once")
    main(args)
