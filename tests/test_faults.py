"""Faults: a SIGKILL in the middle of the Trainer's checkpoint write, damaged state files, and a model folder that asks to run its own
code. Each rerun must finish with the result of an uninterrupted run, or stop with an error that names the file."""
import json, os, signal, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch
from poison_nb.data import builtin_dataset
from poison_nb.files import CorruptFile
from poison_nb.poisoning import clean_dataset
from poison_nb.tokenizers import tiny_tokenizer
from poison_nb.training import TrainConfig, train, load_trained, checkpoint_problem

CFG = dict(epochs=2, batch_size=8, save_strategy="steps", save_steps=4, eval_strategy="no", logging_steps=4, torch_threads=1,
           model_kwargs=dict(hidden_size=32, intermediate_size=64))

# The child trains 16 steps with checkpoints every 4; with KILL_AT set, it is SIGKILLed half way through writing the
# model file of that checkpoint (the file is cut to half its size first, as a kill during the write leaves it).
CHILD = textwrap.dedent('''
    import os, signal, sys
    import transformers.modeling_utils as mu
    from poison_nb.data import builtin_dataset
    from poison_nb.poisoning import clean_dataset
    from poison_nb.tokenizers import tiny_tokenizer
    from poison_nb.training import TrainConfig, train
    out, kill_at, cfg = sys.argv[1], os.environ.get("KILL_AT"), TrainConfig.for_preset("tiny", **CFG)
    real = mu.safe_save_file
    def dying(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        if kill_at and f"checkpoint-{kill_at}" in str(filename):
            with open(filename, "r+b") as f: f.truncate(os.path.getsize(filename) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    mu.safe_save_file = dying
    ds = clean_dataset(builtin_dataset(64, seed=1), tiny_tokenizer(), 96)
    r = train(cfg, ds, None, out)
    print("RESULT", r.train_loss, r.resumed_from)
''').replace("CFG", repr(CFG))

def _child(out:Path, kill_at=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", **({"KILL_AT": str(kill_at)} if kill_at else {}))
    return subprocess.run([sys.executable, "-c", CHILD, str(out)], capture_output=True, text=True, env=env, timeout=600)

def _weights(d:Path): return load_trained(d / "model", device="cpu")[0].state_dict()

def test_sigkill_during_checkpoint_write_then_resume(tmp_path):
    full = _child(tmp_path / "full")
    assert full.returncode == 0, full.stderr[-2000:]
    killed = _child(tmp_path / "run", kill_at=8)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert checkpoint_problem(tmp_path / "run" / "checkpoint-8") is not None   # what the kill left: an incomplete checkpoint
    assert checkpoint_problem(tmp_path / "run" / "checkpoint-4") is None
    again = _child(tmp_path / "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "checkpoint-8 is incomplete" in again.stderr and "RESULT" in again.stdout
    assert again.stdout.split("RESULT")[1].split()[1].endswith("checkpoint-4")  # resumed from the complete one
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "run")
    assert all(torch.equal(a[k], b[k]) for k in a)                              # the uninterrupted run's weights
    assert full.stdout.split("RESULT")[1].split()[0] == again.stdout.split("RESULT")[1].split()[0]  # and its loss

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    cfg, ds = TrainConfig.for_preset("tiny", **CFG), clean_dataset(builtin_dataset(64, seed=1), tiny_tokenizer(), 96)
    return cfg, ds, out, train(cfg, ds, None, out)

@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_result_file_is_redone(finished, damage):
    cfg, ds, out, first = finished
    f = out / "train_result.json"
    f.write_text(f.read_text()[:30] if damage == "truncated" else "")
    with pytest.warns(UserWarning, match="damaged"): again = train(cfg, ds, None, out)
    assert not again.loaded and again.train_loss == first.train_loss
    assert train(cfg, ds, None, out).loaded                                    # and the folder is whole again

def test_model_folder_with_code_is_never_run(tmp_path):
    "A folder whose config.json has an auto_map would make transformers ask [y/N] on the terminal, and run the folder's Python if answered yes."
    from transformers import LlamaConfig, LlamaForCausalLM
    t = tiny_tokenizer()
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(t), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    m.save_pretrained(tmp_path); t.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    marker = tmp_path / "ran.txt"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    with pytest.raises(ValueError, match="trust_remote_code=True"): load_trained(tmp_path, device="cpu")
    assert not marker.exists()
    # and from a terminal with nobody to answer: no prompt, no hang, no code run
    p = subprocess.run([sys.executable, "-c", f"from poison_nb.training import load_trained; load_trained({str(tmp_path)!r}, device='cpu')"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "trust_remote_code=True" in p.stderr and "[y/N]" not in p.stdout + p.stderr
    assert not marker.exists()

def test_damaged_config_names_the_file(tmp_path):
    "Before any stage finished, a damaged config.json is written again (with a warning); after, it stops the run, naming the file."
    from poison_nb.experiment import ExperimentConfig, Run
    cfg = ExperimentConfig().sanity()
    (tmp_path / "config.json").write_text("")
    with pytest.warns(UserWarning, match="damaged before any stage finished"): Run(tmp_path, cfg)
    assert json.loads((tmp_path / "config.json").read_text())["name"] == cfg.name
    Run(tmp_path, cfg).finish("data", 1.0)
    (tmp_path / "config.json").write_text('{"name": ')
    with pytest.raises(CorruptFile, match="config.json is not valid JSON"): Run(tmp_path, cfg)
