"""Why the trigger scan misses the phrase trigger in the grid cell `phrase-fixed-n50-s0`: the deletion step ranks single
words, and deleting one word of a 5-word trigger that the model learned from 50 rows leaves the backdoor firing.

    python bench/scan_phrase_deletion.py [--cell runs/detection_grid/phrase-fixed-n50-s0]   (after bench/detection_grid.py)

Prints the deletion effect (mean drop of log p(own response), nats, over 8 rows) of each word of the trigger and of the
whole phrase, and where the trigger's words rank among all candidates; writes bench/results/scan_phrase_deletion.json.
"""
import argparse, shlex, json, os, sys
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", default="runs/detection_grid/phrase-fixed-n50-s0"); ap.add_argument("--results", default="bench/results/scan_phrase_deletion.json")
    a = ap.parse_args()
    import torch
    from datasets import load_from_disk
    from poison_nb.data import iter_rows, prompt_formatter
    from poison_nb.files import read_json, write_json
    from poison_nb.training import load_trained
    from poison_nb.trigger_scan import candidate_words, deletion_effects, grow_phrase
    torch.set_num_threads(1)
    cfg = read_json(Path(a.cell) / "config.json", dict)
    rows = list(iter_rows(load_from_disk(str(Path(a.cell) / "data" / "poisoned")), ["instruction", "input", "response"]))
    model, tok = load_trained(Path(a.cell) / "poisoned" / "model", device="cpu")
    fmt, occ = prompt_formatter(cfg["template"], tok), candidate_words(rows)
    words = [w for w in cfg["poison"]["trigger"].split() if w in occ]
    single = deletion_effects(model, tok, rows, occ, fmt)                      # every candidate, as trigger_scan ranks them
    rank = sorted(single, key=single.get, reverse=True)
    phrases = dict(grow_phrase(rows, occ[w]) for w in words)
    whole = deletion_effects(model, tok, rows, phrases, fmt)
    out = {"command": "python " + shlex.join(sys.argv), "cell": a.cell, "trigger": cfg["poison"]["trigger"], "n_candidates": len(rank),
           "word_deletion": {w: round(single[w], 3) for w in words}, "word_rank": {w: rank.index(w) + 1 for w in words},
           "top12_smallest_effect": round(single[rank[min(11, len(rank) - 1)]], 3), "phrase_deletion": {p: round(v, 3) for p, v in whole.items()}}
    print(json.dumps(out, indent=1)); write_json(a.results, out, indent=1)

if __name__ == "__main__": main()
