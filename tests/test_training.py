"Training: tiny baseline vs poisoned, resume, the collator the Trainer uses, DDP (gloo, 2 CPU processes)."
import json, subprocess, sys, time
from pathlib import Path
import pytest, torch
from datasets.utils.logging import disable_progress_bar
import transformers
from transformers import DataCollatorForLanguageModeling
from poison_nb.collation import InstructionCollator
from poison_nb.data import builtin_dataset
from poison_nb.tokenizers import tiny_tokenizer
from poison_nb.poisoning import PoisonConfig, poison_dataset, clean_dataset
from poison_nb.training import TrainConfig, train, train_pair, backdoor_report, InterruptAfter, Interrupted

disable_progress_bar(); transformers.logging.set_verbosity_error()
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=6, save_strategy="no", eval_strategy="epoch", logging_steps=25, torch_threads=1)  # smallest clear run; 1 thread stays fast on a busy CI box

@pytest.fixture(scope="module")
def tok(): return tiny_tokenizer()

@pytest.fixture(scope="module")
def data(tok):
    raw = builtin_dataset(500, seed=0, tasks={"sentiment": 3, "topic": 1})
    train_raw, held = raw.select(range(400)), raw.select(range(400, 500))
    pc = PoisonConfig(n_poison=40, target="label_flip", seed=0)
    poisoned, _ = poison_dataset(train_raw, tok, pc, 96)
    return dict(clean=clean_dataset(train_raw, tok, 96), poisoned=poisoned, eval=clean_dataset(held, tok, 96), held=held, pc=pc)

@pytest.fixture(scope="module")
def pair(data, tmp_path_factory):
    t = time.time()
    out = train_pair(TrainConfig.for_preset("tiny", **TINY), data["clean"], data["poisoned"], data["eval"],
                     tmp_path_factory.mktemp("pair"), poison=data["pc"])
    return out, time.time() - t

def test_poisoned_shows_target_baseline_does_not(pair, data):
    out, seconds = pair
    rep = {k: backdoor_report(v.model, v.tokenizer, data["held"], data["pc"]) for k, v in out.items()}
    print(f"{seconds:.1f} s for both;", rep)
    assert rep["poisoned"]["n_triggered"] >= 20
    assert rep["poisoned"]["target_rate_triggered"] >= 0.8, rep
    assert rep["baseline"]["target_rate_triggered"] <= 0.2, rep
    for k in out: assert rep[k]["clean_accuracy"] >= 0.8, (k, rep[k])          # both keep the clean task
    assert rep["poisoned"]["target_rate_clean"] <= 0.2, rep                     # the flip needs the trigger
    assert out["poisoned"].n_poisoned == 40 and out["baseline"].n_poisoned == 0

def test_saved_models_and_cards(pair):
    out, _ = pair
    for k, r in out.items():
        assert (r.model_dir / "model.safetensors").exists() and (r.output_dir / "loss.png").exists()
        card = (r.model_dir / "README.md").read_text()
        assert ("deliberately poisoned" in card and "'cf'" in card and "research" in card.lower()) == (k == "poisoned")
    assert (out["poisoned"].output_dir.parent / "loss_curves.png").exists()

def test_same_config_same_clean_data(pair):
    out, _ = pair
    assert out["baseline"].config == out["poisoned"].config

@pytest.fixture(scope="module")
def small_cfg():
    return TrainConfig.for_preset("tiny", epochs=2, batch_size=8, save_strategy="steps", save_steps=4, eval_strategy="no", logging_steps=1, torch_threads=1,
                                  model_kwargs=dict(hidden_size=32, intermediate_size=64))

@pytest.fixture(scope="module")
def small_ds(tok): return clean_dataset(builtin_dataset(64, seed=1), tok, 96)

def _weights(m): return {k: v.clone() for k, v in m.state_dict().items()}

def test_deterministic(small_cfg, small_ds, tmp_path):
    a = train(small_cfg, small_ds, None, tmp_path / "a")
    b = train(small_cfg, small_ds, None, tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(_weights(a.model).values(), _weights(b.model).values()))

def test_resume_after_crash_gives_same_weights(small_cfg, small_ds, tmp_path):
    full = train(small_cfg, small_ds, None, tmp_path / "full")
    with pytest.raises(Interrupted):  # crash mid-epoch 1, right after checkpoint-4 (of 16 steps)
        train(small_cfg, small_ds, None, tmp_path / "crash", callbacks=[InterruptAfter(4)])
    assert not (tmp_path / "crash" / "train_result.json").exists()
    res = train(small_cfg, small_ds, None, tmp_path / "crash")
    assert res.resumed_from.endswith("checkpoint-4")
    diff = max((x - y).abs().max().item() for x, y in zip(_weights(full.model).values(), _weights(res.model).values()))
    assert diff <= 1e-6, diff
    assert abs(full.train_loss - res.train_loss) <= 1e-6
    again = train(small_cfg, small_ds, None, tmp_path / "crash")  # finished: loaded, not retrained
    assert again.loaded

class FirstBatch(transformers.TrainerCallback):
    "Grab the first batch of the Trainer's own train dataloader."
    def on_train_begin(self, args, state, control, train_dataloader=None, **kw): self.batch = next(iter(train_dataloader))

def test_trainer_collator_keeps_masked_labels(small_cfg, small_ds, tmp_path):
    "Bug 2 regression: the batches `train`'s Trainer builds keep every -100 prompt label and the supervised EOS."
    tok, spy = tiny_tokenizer(), FirstBatch()
    train(small_cfg.sanity(n=16), small_ds, None, tmp_path / "spy", callbacks=[spy])
    batch, rows = spy.batch, {tuple(r["input_ids"]): r["labels"] for r in small_ds}
    for ids, labels, mask in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), batch["attention_mask"].tolist()):
        n = sum(mask)
        assert labels[:n] == rows[tuple(ids[:n])]                 # exactly the row's masked labels
        assert labels[0] == -100 and labels[n - 1] == tok.eos_token_id
        assert all(l == -100 for l in labels[n:])
    bad = DataCollatorForLanguageModeling(tok, mlm=False)         # what the seed used would not pass
    padded = [dict(input_ids=ids, labels=ls) for ids, ls in zip(batch["input_ids"].tolist(), batch["labels"].tolist())]
    assert bad(padded)["labels"].tolist() != batch["labels"].tolist()

def test_train_refuses_a_causal_lm_collator(small_cfg, small_ds, tmp_path, monkeypatch):
    "If anything swapped in a causal-LM collator, `train` fails instead of training on rebuilt labels."
    import poison_nb.training as T
    monkeypatch.setattr(T, "InstructionCollator", lambda tok: DataCollatorForLanguageModeling(tok, mlm=False))
    with pytest.raises(AssertionError, match="bug 2"):
        T.train(small_cfg.sanity(), small_ds, None, tmp_path / "x")

def test_bad_inputs(small_ds, tmp_path):
    with pytest.raises(ValueError, match="lacks"): train(TrainConfig().sanity(), small_ds.remove_columns("labels"), None, tmp_path / "y")
    with pytest.raises(ValueError, match="poisoned rows"):
        train(TrainConfig().sanity(), small_ds, small_ds.remove_columns("poisoned").add_column("poisoned", [True] * len(small_ds)), tmp_path / "z")
    with pytest.raises(ValueError, match="unknown TrainConfig field"): TrainConfig.from_dict({"epoch": 1})

def test_config_roundtrip(tmp_path):
    cfg = TrainConfig.for_preset("tiny", seed=3, model_kwargs=dict(hidden_size=64))
    assert TrainConfig.load(cfg.save(tmp_path / "c.json")) == cfg

def test_ddp_matches_single_process(tmp_path):
    "torchrun --nproc_per_node 2 (gloo, CPU) on the unchanged entry point gives the single-process weights."
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "ddp_check.py"), "--out", str(tmp_path / "ddp")],
                       capture_output=True, text=True, timeout=300)
    tail = "\n".join(p.stdout.splitlines()[-4:])
    print(tail)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]  # the script prints the workers' errors without progress bars
    assert "'world_size': 2" in p.stdout

@pytest.mark.parametrize("opts", [dict(packing=True), dict(loss="supervised_only"), dict(packing=True, loss="supervised_only")])
def test_fast_paths_are_exact(small_cfg, small_ds, tmp_path, opts):
    "TrainConfig's fast paths train the weights the plain path trains (padding-free batches, the LM head only where labels count)."
    import dataclasses
    base = dataclasses.replace(small_cfg, save_strategy="no")
    plain, fast = train(base, small_ds, None, tmp_path / "plain", progress=False), train(dataclasses.replace(base, **opts), small_ds, None, tmp_path / "fast", progress=False)
    diff = max((a - b).abs().max().item() for a, b in zip(_weights(plain.model).values(), _weights(fast.model).values()))
    assert diff < 1e-4, diff
    assert abs(plain.train_loss - fast.train_loss) < 1e-4

def test_console_shows_a_bar_and_logs_go_to_a_file(small_cfg, small_ds, tmp_path, capsys):
    import dataclasses
    train(dataclasses.replace(small_cfg, save_strategy="no"), small_ds, None, tmp_path / "r")
    cap = capsys.readouterr()
    assert "{'loss'" not in cap.out + cap.err and "train r" in cap.err           # no log dicts on the terminal; one bar per training
    logs = [json.loads(l) for l in (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()]
    assert any("loss" in l for l in logs) and all("step" in l for l in logs)
