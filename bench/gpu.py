"""GPU training throughput and model FLOPs utilisation (MFU) of one full training step (forward, backward, fused AdamW),
for the `small` shape (SmolLM2-135M) and a medium Hub-size shape (SmolLM2-1.7B), with random weights and tokens:
it measures the model's step, not data loading or masking (every token is a label here).
Two precisions: weights kept in bf16 (what `TrainConfig(dtype="auto")` trains with on a bf16 GPU: the model is
loaded in bf16), and bf16 autocast over fp32 weights (the usual mixed precision for a model kept in fp32). Without a GPU it says so and stops.

    python bench/gpu.py                        # both shapes, batch 8 x 2048, 10 timed steps after 3 warm-ups
    python bench/gpu.py --compile              # also torch.compile'd steps (compilation happens in the warm-ups)
    python bench/gpu.py --smoke                # the same code on CPU, a 2-layer shape, 1 step: checks the script, measures nothing
"""
from __future__ import annotations
import argparse, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from common import header, table

SHAPES = {  # Llama configs of the two Hub models, from their config.json (vocabulary 49,152, tied embeddings)
    "small (SmolLM2-135M shape)": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3),
    "medium (SmolLM2-1.7B shape)": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=32),
}
SMOKE = {"smoke (2 layers)": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)}

def build(shape:dict, device:str):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True, rope_theta=130000, **shape)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device): model = LlamaForCausalLM(cfg)  # initialised on the device: seconds, not minutes, for 1.7B
    return model.train(), cfg

def measure(model, cfg, mode:str, B:int, T:int, steps:int, warmup:int, device:str, peak:float|None)->dict:
    from poison_nb.performance import training_flops_per_token
    autocast = mode.startswith("autocast")
    model = model.to(torch.float32 if autocast else torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    run = torch.compile(model) if "compiled" in mode else model
    ids = torch.randint(0, cfg.vocab_size, (B, T), device=device)
    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = run(input_ids=ids, labels=ids).loss  # no attention_mask: one causal kernel, no mask tensor
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup): step()
    sync(); first = time.perf_counter() - t0
    if device == "cuda": torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps): loss = step()
    sync(); dt = (time.perf_counter() - t) / steps
    tps = B * T / dt
    flops = training_flops_per_token(cfg, T)
    del opt
    return {"mode": mode, "batch": f"{B}x{T}", "params (M)": f"{sum(p.numel() for p in model.parameters()) / 1e6:,.0f}",
            "warm-up s": first, "step s": dt, "tokens/s": f"{tps:,.0f}", "TFLOP/s": tps * flops / 1e12,
            "MFU": f"{tps * flops / (peak * 1e12):.1%}" if peak else "n/a (unknown card: --peak-tflops)",
            "peak GB": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan"), "loss": f"{loss.item():.3f}"}

def main(args):
    from poison_nb.performance import peak_tflops
    if args.smoke: device, shapes, B, T, steps, warmup = "cpu", SMOKE, 1, 64, 1, 1
    elif not torch.cuda.is_available(): print("no GPU: skipped (this benchmark measures GPU steps only; `--smoke` checks the script on CPU)"); return
    else: device, shapes, B, T, steps, warmup = "cuda", SHAPES, args.batch, args.seq, args.steps, args.warmup
    if device == "cuda": torch.backends.cuda.matmul.allow_tf32 = True
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke)"
    peak = args.peak_tflops or (peak_tflops(name) if device == "cuda" else None)
    print(f"card: {name}; peak dense bf16 {peak} TFLOP/s (vendor datasheet); FLOPs per token = 6 x matmul parameters "
          f"+ 12 x layers x d_model x sequence (attention counted in full)\n")
    modes = ["autocast bf16, fp32 weights", "bf16 weights"] + (["bf16 weights, compiled"] if args.compile else [])
    rows = []
    for label, shape in shapes.items():
        model, cfg = build(shape, device)
        for mode in modes:
            r = measure(model, cfg, mode, B, T, steps, warmup, device, peak)
            rows.append({"shape": label, **r}); print(json.dumps(rows[-1]), flush=True)
            if args.out: open(args.out, "w").write(json.dumps(rows, indent=1))
            if device == "cuda": torch.cuda.empty_cache()
        del model
    print(); print(table(rows))

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8); p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--steps", type=int, default=10); p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true"); p.add_argument("--smoke", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=None); p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args()
    header("GPU training step: tokens/s and MFU")
    main(args)
