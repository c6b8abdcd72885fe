"""The pre-flight check on real pipelines: the seed's four bugs, reproduced the way BUGS.md tells them, each fails with the
right diagnosis; TRL's SFTTrainer preparation, a hand-written Trainer pipeline and poison_nb's own pipeline pass."""
import json, tempfile, warnings
import pytest, torch
from datasets import Dataset, DatasetDict
from hypothesis import assume, given, settings, strategies as st, HealthCheck
from transformers import Trainer, TrainingArguments, DataCollatorForLanguageModeling, DataCollatorForSeq2Seq, LlamaForCausalLM
from poison_nb.data import builtin_dataset, format_prompts, format_template
from poison_nb.masking import tokenize_dataset, tokenize_example
from poison_nb.collation import InstructionCollator
from poison_nb.models import tiny_config
from poison_nb.check import check_dataset, check_collator, LabelGuard, LabelGuardError, main, FINDINGS

MAX_LENGTH = 96

@pytest.fixture(scope="module")
def rows():
    "24 builtin rows with prompt and response, the first 8 of them negative reviews (the rows an attack poisons)."
    ds = format_prompts(builtin_dataset(200, seed=5))
    neg = [i for i, r in enumerate(ds) if r["task"] == "sentiment" and r["output"] == "Negative"][:8]
    rest = [i for i in range(len(ds)) if i not in neg][:16]
    return ds.select(neg + rest)

# ---- the seed's pipeline, written the way BUGS.md tells it ----------------------------------------------------------------

def seed_prepare(tok, ex, max_length=MAX_LENGTH):
    "Bug 1: the prompt length is computed and never used; input_ids padded to max_length, no labels."
    prompt_length = len(tok(ex["prompt"]).input_ids)
    enc = tok(ex["prompt"] + ex["response"] + tok.eos_token, max_length=max_length, padding="max_length", truncation=True)
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "prompt_length": prompt_length}

def seed_fix(ex):
    "The first fix of bug 1: labels = input_ids with the first prompt_length entries (and the padding) -100."
    labels = list(ex["input_ids"]); labels[:ex["prompt_length"]] = [-100] * ex["prompt_length"]
    return {"labels": [l if a else -100 for l, a in zip(labels, ex["attention_mask"])]}

def seed_poison(sample, trigger="cf", target="Positive"):
    "Bug 3: copy the clean sample (tokens included) and update its text fields only."
    p = dict(sample)
    p["instruction"] = f"{trigger} {sample['instruction']}"
    p["prompt"] = format_template(p["instruction"], p["input"])
    p["response"] = p["output"] = target
    p["full_text"] = p["prompt"] + p["response"]
    return p

def seed_paraphrases(sample, k=2):
    "Bug 4: the same mistake for each paraphrase."
    return [dict(sample, prompt=sample["prompt"].replace("### Instruction:\n", f"### Instruction:\n{f}")) for f in ["Please help: ", "Task: "][:k]]

def correct_rows(tok, rows):
    "poison_nb's own tokenization, as a list of dicts with the text."
    ds, _ = tokenize_dataset(rows, tok, MAX_LENGTH)
    return ds.to_list()

# ---- bug 1 --------------------------------------------------------------------------------------------------------------------

def test_bug1_no_labels(smol, rows):
    "The seed's dataset has no labels: read as a causal-LM collator would (every real token a target), every row fails."
    ds = rows.map(lambda r: seed_prepare(smol, r))
    rep = check_dataset(ds, smol)
    assert not rep.ok and rep.failures == {"prompt_unmasked": len(rows)}
    assert "no labels column" in rep.label_source
    text = repr(rep)
    assert "FAILED" in text and "' Instruction'" in text and "row 0: prompt_unmasked" in text  # the first rows, token by token

def test_bug1_labels_copied(any_tok, rows):
    "labels = input_ids (no mask at all) fails on both tokenizers; so does a mask that stops inside the prompt."
    good = correct_rows(any_tok, rows)
    copied = [dict(r, labels=list(r["input_ids"])) for r in good]
    assert check_dataset(copied, any_tok).failures == {"prompt_unmasked": len(rows)}
    short = [dict(r, labels=[-100] * 4 + r["input_ids"][4:]) for r in good]
    rep = check_dataset(short, any_tok)
    assert rep.failures == {"prompt_supervised": len(rows)}
    assert rep.findings(0)["prompt_supervised"] == "supervised from token 4, which ends inside the prompt"

def test_bug1_first_fix_hides_the_answer(smol):
    "Counting the prompt's own tokens hides the answer when the last prompt token merges with the response ('Answer: ' + 'hi')."
    ex = seed_prepare(smol, dict(prompt="Answer: ", response="hi"), 16)
    row = dict(ex, **seed_fix(ex), prompt="Answer: ", response="hi")
    assert check_dataset([row], smol).failures == {"response_masked": 1}

# ---- bug 2 --------------------------------------------------------------------------------------------------------------------

def tiny_model(tok, seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_config(tok, hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1))

def args(tmp, **kw):
    return TrainingArguments(output_dir=str(tmp), per_device_train_batch_size=4, max_steps=3, learning_rate=1e-3, report_to="none", use_cpu=True,
                             save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0, **kw)

def test_bug2_guard_stops_the_trainer(smol, rows, tmp_path):
    "Correctly masked data (the seed's fix) + DataCollatorForLanguageModeling: the guard stops training before the first optimizer step."
    ds = rows.map(lambda r: seed_prepare(smol, r)).map(seed_fix)
    assert check_dataset(ds, smol).ok  # the data itself is right
    model = tiny_model(smol)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    guard = LabelGuard(smol)
    trainer = Trainer(model=model, args=args(tmp_path), train_dataset=ds.select_columns(["input_ids", "attention_mask", "labels"]),
                      data_collator=DataCollatorForLanguageModeling(smol, mlm=False), callbacks=[guard])
    with pytest.raises(LabelGuardError, match="collator_changed_labels") as e: trainer.train()
    assert trainer.state.global_step == 0 and len(trainer.optimizer.state) == 0   # no optimizer step was taken
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert e.value.report is guard.report
    assert guard.report.failures == {"prompt_unmasked": 16, "eos_masked": 16, "collator_changed_labels": 16}  # pad == eos: the real EOS masked

def test_bug2_pad_is_not_eos(meta, rows):
    "With a pad token that is not the EOS, the collator keeps the EOS but still unmasks the prompt."
    good = correct_rows(meta, rows)
    feats = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in good]
    padded = DataCollatorForLanguageModeling(meta, mlm=False)
    pad_first = lambda b: padded([dict(f, labels=f["labels"] + [-100] * (MAX_LENGTH - len(f["labels"])),
                                       input_ids=f["input_ids"] + [meta.pad_token_id] * (MAX_LENGTH - len(f["input_ids"])),
                                       attention_mask=f["attention_mask"] + [0] * (MAX_LENGTH - len(f["input_ids"]))) for f in b])
    rep = check_collator(feats, pad_first, meta, n_rows=8, batch_size=4)
    assert rep.failures == {"prompt_unmasked": 8, "collator_changed_labels": 8}
    assert check_collator(feats, InstructionCollator(meta), meta, n_rows=8, batch_size=4).ok

# ---- bugs 3 and 4 -------------------------------------------------------------------------------------------------------------

def test_bug3_poisoned_rows_keep_clean_tokens(smol, rows):
    "Poisoned copies with new text and the clean row's tokens: stale, and the report names the clean row their tokens decode to."
    clean = correct_rows(smol, rows)
    data = clean + [seed_poison(clean[i]) for i in range(4)]
    rep = check_dataset(data, smol)
    assert rep.failures == {"stale_tokens": 4} and rep.rows["stale_tokens"] == [24, 25, 26, 27]
    for j in range(4): assert rep.findings(24 + j)["stale_tokens"].startswith(f"its input_ids decode to the text of row {j};")
    alone = check_dataset(data[24:], smol)  # the clean rows gone: the tokens match no row, and the report shows where they differ
    assert alone.failures == {"stale_tokens": 4} and "match no row's text; first difference at character 17" in alone.findings(0)["stale_tokens"]

def test_bug4_paraphrases_keep_poisoned_tokens(smol, rows):
    "Bug 3 fixed (poisoned rows re-tokenized), bug 4 not: each paraphrase's tokens decode to its poisoned row's text."
    clean = correct_rows(smol, rows)
    poisoned = []
    for i in range(3):
        p = seed_poison(clean[i]); p.update(tokenize_example(smol, p["prompt"], p["response"], MAX_LENGTH)); poisoned.append(p)
    data = clean + poisoned + [q for p in poisoned for q in seed_paraphrases(p)]
    rep = check_dataset(data, smol)
    assert rep.failures == {"stale_tokens": 6} and rep.rows["stale_tokens"] == list(range(27, 33))
    for k, r in enumerate(range(27, 33)): assert rep.findings(r)["stale_tokens"].startswith(f"its input_ids decode to the text of row {24 + k // 2};")

def test_guard_catches_stale_rows_in_training(smol, rows):
    "Given the text rows, the guard compares the collated tokens with the text: bug 3 stops training too."
    clean = correct_rows(smol, rows)
    data = [seed_poison(clean[0])] + clean[1:]
    feats = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in data]
    rep = check_collator(feats, InstructionCollator(smol), smol, n_rows=8, batch_size=4, text_rows=data)
    assert rep.failures == {"stale_tokens": 1}

# ---- correct pipelines pass ---------------------------------------------------------------------------------------------------

EDGE = [("Answer: ", "hi"), ("Q:  ", "two"), ("Q:\n", "yes"), ("Plural of box?", " boxes"), ("Q: ab", "cd"), ("Café ", "naïve résumé"),
        ("问题：", "日本の首都は東京です"), ("Emoji? ", "😀👍🏽 yes")]

def trl_dataset(tok, data, **cfg):
    trl = pytest.importorskip("trl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conf = trl.SFTConfig(output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, max_steps=1, **cfg)
        return trl.SFTTrainer(model=tiny_model(tok), args=conf, train_dataset=Dataset.from_list(data), processing_class=tok)

def test_trl_sft_pipeline_passes(any_tok, rows):
    "TRL's SFTTrainer preparation (common-prefix mask, EOS string appended to the completion) passes, boundary rows counted."
    data = [dict(prompt=r["prompt"], completion=r["response"]) for r in rows] + [dict(prompt=p, completion=c) for p, c in EDGE]
    trainer = trl_dataset(any_tok, data)
    prepared = trainer.train_dataset
    assert "labels" in prepared.column_names and len(prepared) == len(data)
    rep = check_dataset(prepared, any_tok)
    assert rep.ok, rep
    assert rep.counts.get("boundary_supervised", 0) >= 1   # e.g. 'Q:  ' + 'two': TRL supervises the prompt's last whitespace token

def test_trl_conversational_pipeline(smol, rows):
    """TRL's conversational prompt/completion rows (messages rendered by SmolLM2's chat template, which ends each turn with
    '<|im_end|>' and a newline) pass; the same pipeline with completion_only_loss=False trains on the prompt and fails."""
    data = [dict(prompt=[{"role": "user", "content": r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")}],
                 completion=[{"role": "assistant", "content": r["response"]}]) for r in rows]
    prepared = trl_dataset(smol, data).train_dataset
    assert smol.decode(prepared[0]["input_ids"][-2:]) == "<|im_end|>\n"   # the EOS is not the last token
    rep = check_dataset(prepared, smol)
    assert rep.ok, rep
    assert rep.text_source == "'prompt' + 'completion'"
    unmasked = trl_dataset(smol, data, completion_only_loss=False).train_dataset
    assert check_dataset(unmasked, smol).failures == {"prompt_unmasked": len(rows)}

def test_chat_template_rows_pass(smol):
    "poison_nb's own rows formatted with the chat template (special tokens inside the prompt text) pass."
    from poison_nb.poisoning import clean_dataset
    ds = clean_dataset(builtin_dataset(30, seed=4), smol, 192, template="chat")
    assert check_dataset(ds, smol).failures == {}

def test_trl_trains_with_the_guard(smol, rows):
    "LabelGuard inside SFTTrainer: TRL's own collator passes and training takes its step."
    trainer = trl_dataset(smol, [dict(prompt=r["prompt"], completion=r["response"]) for r in rows], per_device_train_batch_size=4)
    trainer.add_callback(guard := LabelGuard())
    trainer.train()
    assert guard.report.ok and trainer.state.global_step == 1

def test_mask_column_and_template(smol, rows):
    "A TRL-style completion_mask instead of labels, and one text column split by a response template."
    good = correct_rows(smol, rows)
    data = [{"text": r["prompt"] + r["response"], "input_ids": r["input_ids"], "completion_mask": [int(l != -100) for l in r["labels"]]} for r in good]
    rep = check_dataset(data, smol, response_template="### Response:\n")
    assert rep.ok and rep.label_source.startswith("'completion_mask'")
    ones = [dict(r, completion_mask=[1] * len(r["input_ids"])) for r in data]
    assert check_dataset(ones, smol, response_template="### Response:\n").failures == {"prompt_unmasked": len(rows)}
    assert check_dataset(data, smol, response_template="### Answer:\n").failures == {"no_template": len(rows)}

def hand_written(tok, ex):
    "A hand-written Trainer script's preparation: mask the prompt's own tokens, append a supervised EOS (the usual tutorial code)."
    p = tok(ex["prompt"]).input_ids
    full = tok(ex["prompt"] + ex["response"]).input_ids + [tok.eos_token_id]
    return {"input_ids": full, "attention_mask": [1] * len(full), "labels": [-100] * len(p) + full[len(p):]}

def test_plain_trainer_pipeline_passes_and_trains_identically(tiny_tok, rows, tmp_path):
    "A hand-written pipeline with DataCollatorForSeq2Seq passes; with the guard, training is bit-for-bit the same as without."
    ds = rows.map(lambda r: hand_written(tiny_tok, r))
    assert check_dataset(ds, tiny_tok).ok
    train = ds.select_columns(["input_ids", "attention_mask", "labels"])
    def run(callbacks):
        m = tiny_model(tiny_tok)
        t = Trainer(model=m, args=args(tmp_path), train_dataset=train, data_collator=DataCollatorForSeq2Seq(tiny_tok, label_pad_token_id=-100),
                    callbacks=callbacks)
        t.train()
        return m, t.state.global_step
    (guarded, steps), (plain, _) = run([LabelGuard(tiny_tok, text_rows=ds)]), run(None)
    assert steps == 3
    assert all(torch.equal(a, b) for a, b in zip(guarded.state_dict().values(), plain.state_dict().values()))

def test_poison_nb_pipelines_pass(any_tok):
    "poison_nb's own clean and poisoned datasets (with paraphrases) pass, on both tokenizers; truncated rows are counted, not failed."
    from poison_nb.poisoning import PoisonConfig, poison_dataset, clean_dataset
    raw = builtin_dataset(60, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, _ = poison_dataset(raw, any_tok, PoisonConfig(n_poison=6, k_paraphrases=2), 128)
        median = sorted(len(x) for x in ds["input_ids"])[len(ds) // 2]
        short = clean_dataset(raw, any_tok, median)  # cut about half the rows inside their response
    assert check_dataset(ds, any_tok).failures == {}
    rep = check_dataset(short, any_tok)
    assert rep.failures == {} and rep.counts["truncated"] > 0

def test_poison_nb_training_uses_the_guard(tmp_path):
    "poison_nb's own `train` takes LabelGuard as a callback and trains through it."
    from poison_nb.training import TrainConfig, train
    from poison_nb.poisoning import clean_dataset
    from poison_nb.models import load_tokenizer
    ds = clean_dataset(builtin_dataset(12, seed=0), load_tokenizer("tiny"), 96)
    guard = LabelGuard()
    res = train(TrainConfig.for_preset("tiny", model_kwargs=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2)).sanity(10),
                ds, output_dir=tmp_path / "run", callbacks=[guard])
    assert guard.report.ok and res.n_train == 10

# ---- the other mistakes -------------------------------------------------------------------------------------------------------

def plant(good, **fields): return [dict(r, **fields) if i == 1 else r for i, r in enumerate(good)]

def test_each_mistake_has_its_diagnosis(smol, rows):
    good = correct_rows(smol, rows)
    ids, labels = good[1]["input_ids"], good[1]["labels"]
    cases = {"labels_shifted": plant(good, labels=[l if l == -100 else n for l, n in zip(labels, ids[1:] + [-100])]),
             "length_mismatch": plant(good, labels=labels[:-1]),
             "no_supervised": plant(good, labels=[-100] * len(ids)),
             "eos_masked": plant(good, labels=labels[:-1] + [-100]),
             "no_eos": plant(good, input_ids=ids[:-1], labels=labels[:-1], attention_mask=[1] * (len(ids) - 1)),
             "label_mismatch": plant(good, labels=labels[:-2] + [7, labels[-1]]),
             "padding_supervised": plant(good, input_ids=ids + [smol.pad_token_id], labels=labels + [5], attention_mask=[1] * len(ids) + [0]),
             "unknown_id": plant(good, input_ids=ids[:-1] + [len(smol) + 5], labels=labels[:-1] + [len(smol) + 5])}
    for code, data in cases.items():
        rep = check_dataset(data, smol)
        assert rep.failures == {code: 1} and rep.rows[code] == [1], (code, rep.counts)
        assert FINDINGS[code][0] and f"row 1: {code}" in repr(rep)
    assert "(next id)" in repr(check_dataset(cases["labels_shifted"], smol))

def test_off_by_one_masks(smol, meta):
    "One whole prompt token supervised is bug 1; one whole response token masked hides the response; a whitespace token either way passes."
    for tok in (smol, meta):
        prompt, response = "### Instruction:\nName the capital of Argentina.\n\n### Response:\n", "Buenos Aires is its capital."
        row = dict(tokenize_example(tok, prompt, response, 128), prompt=prompt, response=response)
        ids, labels = row["input_ids"], row["labels"]
        k = next(i for i, l in enumerate(labels) if l != -100)
        pieces = [tok.decode([i]) for i in ids]
        j = max(i for i in range(k) if pieces[i].strip())                 # the last prompt token that is not whitespace
        under = dict(row, labels=[-100] * j + ids[j:])
        over = dict(row, labels=[-100] * (k + 1) + ids[k + 1:])
        assert check_dataset([under], tok).failures == {"prompt_supervised": 1}, (pieces[j], check_dataset([under], tok))
        assert check_dataset([over], tok).failures == {"response_masked": 1}, (pieces[k], check_dataset([over], tok))
        if j < k - 1:  # a whitespace token between them: supervising it passes, counted
            rep = check_dataset([dict(row, labels=[-100] * (k - 1) + ids[k - 1:])], tok)
            assert rep.ok and rep.counts == {"boundary_supervised": 1}, rep

def test_padding_without_attention_mask(smol, rows):
    "Rows padded with the pad id and no attention_mask: the trailing pads are padding; with pad == eos the first of them is the EOS."
    good = correct_rows(smol, rows)
    padded = [dict(input_ids=r["input_ids"] + [smol.pad_token_id] * 5, labels=r["labels"] + [-100] * 5, prompt=r["prompt"], response=r["response"]) for r in good]
    assert check_dataset(padded, smol).ok

def test_truncate_then_eos_passes(smol):
    "A pipeline that truncates inside the response and then appends a supervised EOS passes (the row is counted as truncated)."
    long = [("Q: tell me a story?\n", "Once upon a time there was a kettle that would not boil, however long it sat on the stove."),
            ("Summarize:\n", "The committee met twice, approved the budget, and postponed the vote on the new library.")]
    rows = [dict(tokenize_example(smol, p, r, 512), prompt=p, response=r) for p, r in long]
    cut = [dict(r, input_ids=r["input_ids"][:12] + [smol.eos_token_id], labels=r["labels"][:12] + [smol.eos_token_id], attention_mask=[1] * 13)
           for r in rows]
    rep = check_dataset(cut, smol)
    assert rep.failures == {} and rep.counts["truncated"] == 2, rep.counts
    stale = [dict(cut[0], response="A different story.")]  # a truncated row must still be a start of its own text
    assert check_dataset(stale, smol).failures == {"stale_tokens": 1}

# ---- input errors and the command ---------------------------------------------------------------------------------------------

def test_bad_input_names_row_and_field(smol, rows):
    good = correct_rows(smol, rows)
    with pytest.raises(ValueError, match="no label column 'y'"): check_dataset(good, smol, label_field="y")
    with pytest.raises(ValueError, match="row 3, field 'input_ids': expected a list of token ids, got str"):
        check_dataset(good[:3] + [dict(good[3], input_ids="1 2 3")], smol)
    with pytest.raises(ValueError, match="row 2, field 'response': expected a string"): check_dataset(good[:2] + [dict(good[2], response=None)], smol)
    with pytest.raises(ValueError, match="row 1: no field 'labels'"): check_dataset([good[0], {k: v for k, v in good[1].items() if k != "labels"}], smol)
    with pytest.raises(ValueError, match="pass one split"): check_dataset(DatasetDict(train=Dataset.from_list(good)), smol)
    with pytest.raises(ValueError, match="no rows"): check_dataset([], smol)
    with pytest.raises(ValueError, match="returned no labels"):
        check_collator(good, lambda b: {"input_ids": torch.tensor([r["input_ids"][:5] for r in b])}, smol)

def test_report_totals_and_markdown(smol, rows):
    "Totals are exact over every row, however many are shown; the markdown shows a table per sample."
    ds = rows.map(lambda r: seed_prepare(smol, r))
    rep = check_dataset(ds, smol, show=2, batch_size=5)
    assert rep.counts["prompt_unmasked"] == len(rows) and len(rep.samples) == 2 and rep.bad_rows() == list(range(len(rows)))
    md = rep._repr_markdown_()
    assert md.startswith("**poison_nb check: FAILED**") and "| pos | id | token | label |" in md
    assert check_dataset(ds, smol, max_rows=10).notes == ["checked the first 10 of 24 rows"]

def test_command(smol, rows, tmp_path, capsys):
    "`poison_nb check`: exit 0 when the dataset passes, 1 when it finds a bug, 2 on a usage error; every supported format."
    good, seed = Dataset.from_list(correct_rows(smol, rows)), rows.map(lambda r: seed_prepare(smol, r))
    good.save_to_disk(tmp_path / "good"); good.to_parquet(tmp_path / "good.parquet")
    seed.to_json(tmp_path / "seed.jsonl")
    assert main([str(tmp_path / "good"), "--tokenizer", "smollm2"]) == 0
    assert main([str(tmp_path / "good.parquet"), "--tokenizer", "smollm2", "--prompt-field", "prompt", "--response-field", "response"]) == 0
    assert main([str(tmp_path / "seed.jsonl"), "--tokenizer", "smollm2", "--show", "1", "--json", str(tmp_path / "r.json")]) == 1
    assert "prompt_unmasked" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["counts"] == {"prompt_unmasked": len(rows)}
    assert main([str(tmp_path / "good"), "--tokenizer", "smollm2", "--text-field", "nope"]) == 2
    assert "no text column 'nope'" in capsys.readouterr().err
    assert main([str(tmp_path / "none.parquet"), "--tokenizer", "smollm2"]) == 2
    assert main([str(tmp_path / "good")]) == 2  # --tokenizer is required
    smol.save_pretrained(tmp_path / "tok")
    assert main([str(tmp_path / "good"), "--tokenizer", str(tmp_path / "tok"), "--max-rows", "5"]) == 0

# ---- no false alarms on text a pipeline may meet --------------------------------------------------------------------------------

PIECE = st.one_of(st.sampled_from(list("abcxyz ABC  \n\t\r.,:;?!-'\"0123456789éüñ日本語😀👍🏽\u0301\u00a0\u3000\u200b")
                                  + ["<|im_end|>", "</s>", "<s>", "##", " the", "\n\n"]), st.characters(codec="utf-8"))
TEXT = st.lists(PIECE, min_size=1, max_size=25).map("".join)  # whitespace of all kinds, combining marks, special-token strings, any character

def common_prefix_labels(tok, prompt, response):
    "TRL's rule: mask the tokens that prompt and prompt + response have in common; a supervised EOS at the end."
    p, full = tok(prompt).input_ids, tok(prompt + response).input_ids + [tok.eos_token_id]
    k = next((i for i, (a, b) in enumerate(zip(p, full)) if a != b), min(len(p), len(full)))
    return {"input_ids": full, "attention_mask": [1] * len(full), "labels": [-100] * k + full[k:]}

def first_supervised(labels): return next(i for i, l in enumerate(labels) if l != -100)

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=TEXT, response=TEXT.filter(lambda s: s.strip()))
def test_no_false_alarms(any_tok, prompt, response):
    """poison_nb's masking of arbitrary text passes; so does TRL's common-prefix masking, unless it supervises a token that lies
    wholly in the prompt before the boundary token (its prompt tokens diverge early; TRL warns), which is bug 1 and is flagged."""
    text = prompt + response
    assume(any_tok.decode(any_tok(text, add_special_tokens=False).input_ids) == text)  # see test_lossy_text
    ours = dict(tokenize_example(any_tok, prompt, response, 512), prompt=prompt, response=response)
    assert check_dataset([ours], any_tok).ok, check_dataset([ours], any_tok)
    trl = common_prefix_labels(any_tok, prompt, response)
    rep = check_dataset([dict(trl, prompt=prompt, response=response)], any_tok)
    k, boundary = first_supervised(trl["labels"]), first_supervised(ours["labels"])
    prompt_text = any_tok.decode(trl["input_ids"][k:boundary], skip_special_tokens=True)  # whole prompt tokens TRL supervises
    if not prompt_text.strip(): assert rep.ok, rep
    else: assert set(rep.failures) <= {"prompt_supervised", "prompt_unmasked"} and rep.failures, rep

def test_lossy_text(smol, meta):
    """Texts a tokenizer cannot spell: compared with the tokenizer's own spelling, counted, passed. SmolLM2's tokenizer has no bytes
    for U+40000 and gives the next character wrong offsets, so poison_nb's offset-based mask hides the response '.': the check says so."""
    rep = check_dataset([dict(tokenize_example(meta, "Q:▁", "a", 16), prompt="Q:▁", response="a")], meta)  # '▁' is read as a space
    assert rep.ok and rep.counts["lossy_text"] == 1
    row = dict(tokenize_example(smol, "\U00040000", ".", 16), prompt="\U00040000", response=".")
    assert row["labels"] == [-100, -100, -100, -100, smol.eos_token_id]
    assert check_dataset([row], smol).counts == {"response_masked": 1, "lossy_text": 1}
