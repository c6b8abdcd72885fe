import json, pytest
from datasets import Dataset
from poison_nb.data import builtin_dataset, validate_rows, load_instructions, format_prompts, format_chat, TASKS

def test_builtin_dataset_is_distinct_deterministic_and_large():
    ds = builtin_dataset(2000, seed=3)
    assert len(ds) == 2000 and set(ds.column_names) == {"instruction", "input", "output", "task"}
    assert len({(r["instruction"], r["input"]) for r in ds}) == 2000
    assert ds[:] == builtin_dataset(2000, seed=3)[:]
    assert set(ds["task"]) == set(TASKS)
    for name, (_, kind, labels) in TASKS.items():
        if kind == "classification": assert set(ds.filter(lambda r: r["task"] == name)["output"]) <= set(labels)

@pytest.mark.parametrize("row,msg", [
    (dict(instruction="", input="", output="x"), "row 0, field 'instruction': empty"),
    (dict(instruction="a", input=None, output="x"), "row 0, field 'input': missing"),
    (dict(instruction="a", input="", output=5), "row 0, field 'output': not a string (int)"),
    (dict(instruction="a", input=""), "row 0, field 'output': missing"),
])
def test_bad_rows_name_row_and_field(row, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")): validate_rows(Dataset.from_list([row]))

def test_filtered_rows_are_counted():
    ds = Dataset.from_list([dict(instruction="a", input="", output="x"), dict(instruction="b", input="", output=" ")] * 3)
    kept, report = validate_rows(ds, on_bad="filter")
    assert len(kept) == 3 and report.kept == 3 and len(report.dropped) == 3
    assert report.counts() == {"output: empty": 3}
    assert [r for r, _, _ in report.dropped] == [1, 3, 5]

def test_load_alpaca_json_and_csv(tmp_path):
    rows = [dict(instruction="Name a color.", input="", output="Red"), dict(instruction="Add.", input="1 2", output="3")]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    ds, rep = load_instructions(str(tmp_path / "a.json"))
    assert ds[1] == dict(rows[1], task="default") and rep.kept == 2
    with pytest.raises(ValueError, match="no 'output' column"):
        (tmp_path / "b.jsonl").write_text(json.dumps(dict(instruction="x", text="y")) + "\n")
        load_instructions(str(tmp_path / "b.jsonl"))

def test_chat_prompt_ends_at_assistant_turn(smol):
    p = format_chat(smol, "Say hi.")
    assert p.startswith(smol.bos_token) and p.endswith("<|im_start|>assistant\n") and "Say hi." in p
    fp = format_prompts(builtin_dataset(3), template="chat", tokenizer=smol)
    assert all(r["prompt"].endswith("assistant\n") and r["response"] == r["output"] for r in fp)
