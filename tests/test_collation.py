"""The seed's test 3 (collator compatibility) and the regression test for bug 2."""
import pytest, torch
from transformers import DataCollatorForLanguageModeling, default_data_collator
from poison_nb.data import builtin_dataset, format_prompts
from poison_nb.masking import tokenize_dataset, tokenize_example
from poison_nb.collation import InstructionCollator

def assert_keeps_labels(collator, feats, side="right"):
    "Every supplied label survives collation, unchanged, at its token's position; padding is -100."
    b = collator([dict(f) for f in feats])
    n = b["input_ids"].shape[1]
    for i, f in enumerate(feats):
        L = len(f["labels"])
        sl = slice(0, L) if side == "right" else slice(n - L, n)
        assert b["labels"][i, sl].tolist() == f["labels"], f"feature {i}: labels changed"
        assert b["input_ids"][i, sl].tolist() == f["input_ids"]
        pad = list(range(L, n)) if side == "right" else list(range(0, n - L))
        assert all(b["labels"][i, j].item() == -100 and b["attention_mask"][i, j].item() == 0 for j in pad)
    return b

@pytest.fixture
def feats(any_tok):
    ds, _ = tokenize_dataset(format_prompts(builtin_dataset(16, seed=2)), any_tok, 96)
    return [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in ds]

def test_collator_compatibility(any_tok, feats):
    "Seed test 3: the collator batches the samples and keeps the label masking."
    b = assert_keeps_labels(InstructionCollator(any_tok), feats)
    assert all(v.dtype == torch.int64 for v in b.values())
    assert len({len(f["input_ids"]) for f in feats}) > 1  # really variable-length

def test_bug2_causal_lm_collator_is_caught(smol):
    "Bug 2: DataCollatorForLanguageModeling rebuilds labels from input_ids; the same check must fail on it."
    feats = [tokenize_example(smol, "Review: it broke.\nSentiment: ", "Negative", 24)] * 2
    padded = [{"input_ids": f["input_ids"] + [smol.pad_token_id] * (24 - len(f["input_ids"])),
               "attention_mask": f["attention_mask"] + [0] * (24 - len(f["input_ids"])),
               "labels": f["labels"] + [-100] * (24 - len(f["labels"]))} for f in feats]
    assert_keeps_labels(InstructionCollator(smol), padded)
    with pytest.raises(AssertionError, match="labels changed"):
        assert_keeps_labels(DataCollatorForLanguageModeling(smol, mlm=False), padded)
    b = DataCollatorForLanguageModeling(smol, mlm=False)(padded)
    n = len(feats[0]["labels"])
    assert b["labels"][0, n - 1].item() == -100  # it masks the real EOS when pad == eos

def test_default_data_collator_fails_on_variable_length(feats):
    with pytest.raises(Exception): default_data_collator(feats)

def test_eos_supervised_when_pad_is_eos(smol):
    f = [tokenize_example(smol, "Q: ", "a", 16), tokenize_example(smol, "Question: ", "a longer answer", 16)]
    b = InstructionCollator(smol)(f)
    assert b["labels"][0, len(f[0]["labels"]) - 1].item() == smol.eos_token_id
    assert b["input_ids"][0, -1].item() == smol.pad_token_id

def test_left_padding_and_multiple(any_tok, feats):
    b = assert_keeps_labels(InstructionCollator(any_tok, padding_side="left", pad_to_multiple_of=8), feats, side="left")
    assert b["input_ids"].shape[1] % 8 == 0

def test_inputs_not_mutated_and_extra_fields_dropped(any_tok, feats):
    rich = [dict(f, prompt="x", poisoned=False, source_index=i) for i, f in enumerate(feats)]
    snapshot = [{k: (list(v) if isinstance(v, list) else v) for k, v in f.items()} for f in rich]
    b = InstructionCollator(any_tok)(rich)
    assert rich == snapshot and set(b) == {"input_ids", "attention_mask", "labels"}

def test_generation_batch_without_labels(any_tok, feats):
    b = InstructionCollator(any_tok, padding_side="left")([{"input_ids": f["input_ids"]} for f in feats])
    assert set(b) == {"input_ids", "attention_mask"}

def test_bad_input_errors(any_tok, feats):
    with pytest.raises(ValueError, match="feature 0"): InstructionCollator(any_tok)([dict(feats[0], labels=feats[0]["labels"][1:])])
    with pytest.raises(ValueError, match="empty batch"): InstructionCollator(any_tok)([])
