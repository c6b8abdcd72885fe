"Shared helpers for the bench scripts: the machine line, the `tiny` model, markdown tables."
from __future__ import annotations
import os, sys, time, statistics
import torch

def load_line()->str:
    "The 1-minute load average: other processes on the machine slow every number down."
    try: return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError: return "load average unknown"

def header(title:str, argv:list[str]|None=None):
    "Print what ran, where, and the command that reproduces it."
    from poison_nb.performance import machine
    print(f"## {title}\n")
    print(f"command: `python {' '.join(argv or sys.argv)}`  ")
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}, {load_line()}\n")

def table(rows:list[dict], floatfmt:str="{:.3g}")->str:
    "A markdown table from a list of dicts (the keys of the first row are the columns)."
    cols = list(rows[0])
    fmt = lambda v: floatfmt.format(v) if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])

def tiny_model(vocab_size:int, seed:int=0):
    "The `tiny` preset if poison_nb.models has it, else the same shape built here (2 layers, d_model 128, tied embeddings)."
    try:
        from poison_nb.models import load_model
        m = load_model("tiny", device="cpu")
        m = m[0] if isinstance(m, tuple) else m
        c = m.config
        return m, (f"poison_nb.models.load_model('tiny'): d_model {c.hidden_size}, {c.num_hidden_layers} layers, {c.num_attention_heads} heads, "
                   f"d_mlp {c.intermediate_size}, vocab {c.vocab_size}, tied {c.tie_word_embeddings}")
    except (ImportError, AttributeError, ValueError, TypeError):
        from transformers import LlamaConfig, LlamaForCausalLM
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True)
        return LlamaForCausalLM(cfg), "LlamaForCausalLM(d_model 128, 2 layers, 4 heads, d_mlp 512, vocab 512, tied)"

def small_model():
    "SmolLM2-135M-Instruct (fp32), from poison_nb's cached conversion of the GGUF file (`models.smollm2_model`)."
    from poison_nb.models import smollm2_model
    return smollm2_model(), "SmolLM2-135M-Instruct (GGUF Q4_1 dequantized to fp32)"

def interleaved(fns:dict, reps:int, warmup:int=1)->dict[str, list[float]]:
    "Time each fn `reps` times, alternating between them (A B A B ...), after `warmup` untimed rounds; seconds."
    out = {k: [] for k in fns}
    for r in range(warmup + reps):
        for k, f in fns.items():
            t = time.perf_counter(); f(); dt = time.perf_counter() - t
            if r >= warmup: out[k].append(dt)
    return out

med = statistics.median

class PeakRSS:
    """Peak resident memory while the block runs, sampled every `interval` s (ru_maxrss is unusable: a child inherits its parent's peak).
    `peak` is the whole RSS; `peak_anon` leaves out file-backed pages (RSS minus shared: memory-mapped Arrow files, which the kernel can drop)."""
    def __init__(self, interval:float=0.002): self.interval = interval
    def __enter__(self):
        import psutil, threading
        self.proc, self.stop = psutil.Process(), threading.Event()
        m = self.proc.memory_info()
        self.before = self.peak = m.rss; self.before_anon = self.peak_anon = m.rss - m.shared
        def watch():
            while not self.stop.is_set(): self._sample(); self.stop.wait(self.interval)
        self.thread = threading.Thread(target=watch, daemon=True); self.thread.start()
        return self
    def _sample(self):
        m = self.proc.memory_info()
        self.peak, self.peak_anon = max(self.peak, m.rss), max(self.peak_anon, m.rss - m.shared)
    def __exit__(self, *exc):
        self.stop.set(); self.thread.join(); self._sample()
    @property
    def above_mb(self)->float: return (self.peak - self.before) / 2**20
    @property
    def anon_above_mb(self)->float: return (self.peak_anon - self.before_anon) / 2**20
