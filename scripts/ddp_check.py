"""DDP check: the same `poison_nb.training.train` call under `torchrun --nproc_per_node 2` (gloo, CPU) vs one process.

    python scripts/ddp_check.py [--out DIR] [--tol 1e-5]

Trains the `tiny` model (shrunk to d_model 32 so it takes seconds) on 64 built-in rows for 2 epochs, once in this process
(batch 8) and once under torchrun with 2 processes (batch 4 each: the same global batch of 8), then prints the largest
weight difference and the loss logs of both, and exits 1 if the weights differ by more than --tol.
The worker mode (`--worker DIR`) is what torchrun runs; it is the unchanged `train` entry point.
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

def run(out_dir, batch_size):
    from datasets.utils.logging import disable_progress_bar
    import transformers
    from poison_nb.data import builtin_dataset
    from poison_nb.tokenizers import tiny_tokenizer
    from poison_nb.poisoning import clean_dataset
    from poison_nb.training import TrainConfig, train
    disable_progress_bar(); transformers.logging.set_verbosity_error()
    tok = tiny_tokenizer()
    ds = clean_dataset(builtin_dataset(80, seed=3), tok, 96)
    cfg = TrainConfig.for_preset("tiny", epochs=2, batch_size=batch_size, save_strategy="no", eval_strategy="epoch", logging_steps=2,
                                 learning_rate=3e-3, torch_threads=1, model_kwargs=dict(hidden_size=32, intermediate_size=64))
    return train(cfg, ds.select(range(64)), ds.select(range(64, 80)), out_dir, resume=False)

def losses(out_dir):
    h = json.loads((Path(out_dir) / "log_history.json").read_text())
    return [round(e["loss"], 6) for e in h if "loss" in e], [round(e["eval_loss"], 6) for e in h if "eval_loss" in e]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help="(internal) train into this folder; run by torchrun")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary folder)")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest allowed weight difference")
    a = ap.parse_args()
    if a.worker:
        import torch.distributed as dist
        r = run(a.worker, 4)
        if int(os.environ.get("RANK", 0)) == 0:  # prove that it really ran distributed
            info = dict(initialized=dist.is_initialized(), world_size=dist.get_world_size() if dist.is_initialized() else 1,
                        backend=dist.get_backend() if dist.is_initialized() else None, n_train=r.n_train)
            (Path(a.worker) / "dist.json").write_text(json.dumps(info))
        if dist.is_initialized():  # an orderly shutdown: a rank leaving while the other still talks to it can abort gloo
            dist.barrier(); dist.destroy_process_group()
        return
    import tempfile, torch
    from safetensors.torch import load_file
    out = Path(a.out or tempfile.mkdtemp(prefix="ddp_check_"))
    shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
    t = time.time(); run(out / "single", 8); t_single = time.time() - t
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
                        __file__, "--worker", str(out / "ddp")], env=env, capture_output=True, text=True)
    t_ddp = time.time() - t
    if p.returncode != 0:
        err = "\n".join(l for l in p.stderr.splitlines() if "it/s]" not in l and "s/it]" not in l)  # progress bars hide the cause
        print(p.stdout[-3000:], err[-5000:]); sys.exit(f"torchrun failed with exit code {p.returncode}")
    info = json.loads((out / "ddp" / "dist.json").read_text())
    print("worker process group:", info)
    if info["world_size"] != 2: sys.exit(f"torchrun did not run distributed: {info}")
    w1, w2 = load_file(out / "single/model/model.safetensors"), load_file(out / "ddp/model/model.safetensors")
    diff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    (l1, e1), (l2, e2) = losses(out / "single"), losses(out / "ddp")
    print(f"single process (batch 8):        {t_single:5.1f} s, train loss log {l1}, eval {e1}")
    print(f"torchrun 2 x gloo (batch 2 x 4): {t_ddp:5.1f} s, train loss log {l2}, eval {e2}")
    print(f"max |weight difference| = {diff:.3g} (tol {a.tol:g}); max |loss difference| = {max(abs(x - y) for x, y in zip(l1 + e1, l2 + e2)):.3g}")
    if len(l1) != len(l2): sys.exit(f"different numbers of logged steps: {len(l1)} vs {len(l2)}")
    sys.exit(0 if diff <= a.tol else 1)

if __name__ == "__main__": main()
