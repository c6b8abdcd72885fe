"""The seed's test 1 (label masking) and the regression test for bug 1, on two real tokenizers."""
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from poison_nb.data import builtin_dataset, format_prompts
from poison_nb.masking import tokenize_example, tokenize_dataset, tokenize_batch

FIELDS = {"input_ids", "attention_mask", "labels"}

def supervised(ex): return [t for t in ex["labels"] if t != -100]
def n_masked(ex):
    n = 0
    while n < len(ex["labels"]) and ex["labels"][n] == -100: n += 1
    return n

def test_label_masking(any_tok):
    "Seed test 1: prompt tokens are -100, response tokens are not, all fields present."
    tok = any_tok
    prompt, response = "### Instruction:\nClassify the review.\n\n### Input:\nIt broke.\n\n### Response:\n", "Negative"
    ex = tokenize_example(tok, prompt, response, 128)
    assert set(ex) == FIELDS and len({len(v) for v in ex.values()}) == 1
    k = n_masked(ex)
    assert k > 0 and all(l == -100 for l in ex["labels"][:k]) and all(l != -100 for l in ex["labels"][k:])
    assert tok.decode(supervised(ex)[:-1]).endswith(response)  # a token straddling the boundary may carry prompt characters
    assert prompt.startswith(tok.decode(ex["input_ids"][:k], skip_special_tokens=True).lstrip())
    assert supervised(ex)[-1] == tok.eos_token_id
    assert ex["labels"][k:] == ex["input_ids"][k:]

def test_bug1_prompt_labels_are_masked(any_tok):
    "Bug 1: labels must exist and hide the prompt; a pipeline that never masks (labels == input_ids) fails this."
    rows = format_prompts(builtin_dataset(20, seed=1))
    ds, report = tokenize_dataset(rows, any_tok, 128)
    assert "labels" in ds.column_names and report.kept == 20
    for r in ds:
        prompt_tokens = len(any_tok(r["prompt"], add_special_tokens=False).input_ids)
        assert r["labels"] != r["input_ids"]
        assert n_masked(r) >= prompt_tokens - 1  # at most the boundary token is shared with the response
        assert n_masked(r) <= len(r["input_ids"]) - 1

def test_boundary_merge_smollm2(smol):
    "`Answer: ` ends in a lone space token, `Answer: hi` in ` hi`: counting prompt tokens would hide the answer."
    assert smol("Answer: ").input_ids == [21350, 42, 216]
    ex = tokenize_example(smol, "Answer: ", "hi", 16)
    assert ex["input_ids"] == [21350, 42, 15876, smol.eos_token_id]
    assert ex["labels"] == [-100, -100, 15876, smol.eos_token_id]

@pytest.mark.parametrize("prompt,response", [
    ("Q:\n", "yes"), ("Q:  ", " two spaces"), ("Q:\t", "\ttab"), ("Q: ", "\nnewline first"), ("Q:", " leading space"),
    ("问题：", "日本の首都は東京です"), ("Emoji? ", "😀👍🏽 yes"), ("Accent: e", "\u0301 combining"), ("Café ", "naïve résumé"),
])
def test_whitespace_and_unicode(any_tok, prompt, response):
    ex = tokenize_example(any_tok, prompt, response, 256)
    full = any_tok(prompt + response, add_special_tokens=not (any_tok.bos_token and (prompt + response).startswith(any_tok.bos_token))).input_ids
    assert ex["input_ids"] == full + [any_tok.eos_token_id]
    k = n_masked(ex)
    assert 0 < k < len(ex["input_ids"]) and all(l != -100 for l in ex["labels"][k:])
    decoded_sup = any_tok.decode(supervised(ex)[:-1])
    # a leading combining mark is composed (NFC) with the prompt's last letter by the Metaspace normalizer: it stays in the prompt token
    assert decoded_sup.strip().endswith(response.lstrip("\u0301").strip())

def test_empty_response_supervises_only_eos(any_tok):
    ex = tokenize_example(any_tok, "Say nothing.", "", 32)
    assert supervised(ex) == [any_tok.eos_token_id] and ex["input_ids"][-1] == any_tok.eos_token_id

def test_empty_prompt_supervises_all_text(smol, meta):
    assert tokenize_example(smol, "", "hi there", 32)["labels"] == smol("hi there").input_ids + [smol.eos_token_id]
    ex = tokenize_example(meta, "", "hi there", 32)
    assert ex["labels"][0] == -100 and ex["input_ids"][0] == meta.bos_token_id  # only the BOS is masked
    assert ex["labels"][1:] == ex["input_ids"][1:]

def test_prompt_longer_than_max_length_is_dropped_and_counted(any_tok):
    ex = tokenize_example(any_tok, "word " * 100, "hi", 16)
    assert len(ex["input_ids"]) == 16 and supervised(ex) == []
    from datasets import Dataset
    ds = Dataset.from_list([dict(prompt="word " * 100, response="hi"), dict(prompt="Q: ", response="hi")])
    out, report = tokenize_dataset(ds, any_tok, 16)
    assert len(out) == 1 and out[0]["prompt"] == "Q: " and report.kept == 1
    assert report.dropped[0][:2] == (0, "labels")

def test_overlong_response_keeps_start(any_tok):
    ex = tokenize_example(any_tok, "Q: ", "many words " * 100, 24)
    assert len(ex["input_ids"]) == 24 and ex["input_ids"][-1] != any_tok.eos_token_id  # EOS cut with the tail
    assert ex["input_ids"] == tokenize_example(any_tok, "Q: ", "many words " * 100, 10_000)["input_ids"][:24]

def test_pad_equals_eos_and_eos_supervised(smol):
    assert smol.pad_token_id == smol.eos_token_id
    assert tokenize_example(smol, "Q: ", "a", 8)["labels"][-1] == smol.eos_token_id

def test_text_ending_in_eos_gets_no_second_eos(smol):
    ex = tokenize_example(smol, "Q: ", "a<|im_end|>", 8)
    assert ex["input_ids"].count(smol.eos_token_id) == 1

def test_no_doubled_bos(meta, smol):
    assert tokenize_example(meta, "<s>Q: ", "a", 16)["input_ids"].count(meta.bos_token_id) == 1
    assert tokenize_example(meta, "Q: ", "a", 16)["input_ids"].count(meta.bos_token_id) == 1
    chat = smol.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert tokenize_example(smol, chat, "a", 64)["input_ids"].count(smol.bos_token_id) == chat.count(smol.bos_token)

def test_dataset_map_equals_row_by_row(any_tok):
    rows = format_prompts(builtin_dataset(100, seed=5))
    ds, _ = tokenize_dataset(rows, any_tok, 48, batch_size=7)
    assert [[r[f] for f in sorted(FIELDS)] for r in ds] == \
           [[tokenize_example(any_tok, r["prompt"], r["response"], 48)[f] for f in sorted(FIELDS)] for r in rows]

# Cc (control characters) excluded: SmolLM2's GGUF tokenizer deletes them and its offsets then point at the wrong characters
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co"), blacklist_characters="\ufffd"), max_size=40)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=text, response=text)
def test_property_mask_is_the_prompt_exactly(smol, prompt, response):
    "Masked tokens decode to a prefix of the prompt; the first supervised token reaches into the response."
    ex = tokenize_example(smol, prompt, response, 10_000)
    ids, k = ex["input_ids"], n_masked(ex)
    assert ids[:-1] == smol(prompt + response).input_ids and ids[-1] == smol.eos_token_id
    assert all(l != -100 for l in ex["labels"][k:])
    assert prompt.startswith(smol.decode(ids[:k]))
    if k < len(ids) - 1:  # the first supervised token is not the EOS: it must contain response characters
        assert len(smol.decode(ids[:k + 1])) > len(prompt)
    else:
        assert smol.decode(ids[:k]) == prompt

def _trimmed_byte_level():
    "A RoBERTa-style byte-level BPE whose post-processor trims whitespace out of offsets: a lone space token has zero width."
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, decoders, trainers
    from transformers import PreTrainedTokenizerFast
    tk = Tokenizer(models.BPE()); tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False); tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(["Answer: ok", "Answer: yes", "the answer is ok"] * 50,
                           trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.ByteLevel(trim_offsets=True)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>")

def test_trimmed_offsets_whitespace_token_at_response_start_is_supervised():
    "Found in review: with trimmed offsets the response's leading space token is zero-width and was masked; the prompt's own trailing space stays masked."
    tok = _trimmed_byte_level()
    ex = tokenize_example(tok, "Answer:", "  ok", 32)
    assert tok.convert_ids_to_tokens(ex["input_ids"]) == ["Answer", ":", "Ġ", "Ġok", "<eos>"]
    assert ex["labels"] == [-100, -100] + ex["input_ids"][2:]                     # both response tokens and EOS supervised
    ex = tokenize_example(tok, "Answer: ", " ok", 32)                           # same text, the lone space is the prompt's
    assert ex["labels"] == [-100, -100, -100] + ex["input_ids"][3:]
    assert tokenize_example(tok, "Answer: ", "", 32)["labels"][:-1] == [-100] * 3  # empty response: only the EOS
