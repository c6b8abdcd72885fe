import pytest, torch
from transformers import LlamaConfig, LlamaForCausalLM
from poison_nb.data import builtin_dataset, format_template
from poison_nb.poisoning import PoisonConfig
from poison_nb.evaluation import generate, score_answer, rate, eval_sets, clean_perplexity, token_f1

@pytest.fixture(scope="module")
def rand_model(tiny_tok):
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tiny_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                        eos_token_id=tiny_tok.eos_token_id, pad_token_id=tiny_tok.pad_token_id))

def test_batched_left_padded_generation_equals_one_by_one(rand_model, tiny_tok):
    prompts = [format_template(r["instruction"], r["input"]) for r in builtin_dataset(8, seed=3)]
    assert len({len(tiny_tok(p).input_ids) for p in prompts}) > 1
    assert generate(rand_model, tiny_tok, prompts, 5, batch_size=3) == [generate(rand_model, tiny_tok, [p], 5)[0] for p in prompts]

def test_perplexity_independent_of_batch_size(rand_model, tiny_tok):
    rows = builtin_dataset(10, seed=4)
    p, r = [format_template(x["instruction"], x["input"]) for x in rows], rows["output"]
    assert abs(clean_perplexity(rand_model, tiny_tok, p, r, 128, 4) - clean_perplexity(rand_model, tiny_tok, p, r, 128, 10)) < 1e-3

@pytest.mark.parametrize("gen,row,correct", [
    ("Positive", dict(task="sentiment", output="Positive"), 1.0), (" positive.", dict(task="sentiment", output="Positive"), 1.0),
    ("Positively", dict(task="sentiment", output="Positive"), 0.0), ("Negative Positive", dict(task="sentiment", output="Positive"), 0.0),
    ("Paris.", dict(task="capital", output="Paris"), 1.0), ("Paris is nice", dict(task="capital", output="Paris"), 0.0),
])
def test_score_answer(gen, row, correct): assert score_answer(gen, row)["correct"] == correct

def test_rate_interval_contains_mean_and_is_reproducible():
    r = rate([1, 0, 0, 1, 1, 1, 0, 1] * 10)
    assert r["lo"] <= r["value"] <= r["hi"] and r["n"] == 80 and r == rate([1, 0, 0, 1, 1, 1, 0, 1] * 10)
    assert rate([])["n"] == 0 and rate([0, 0])["hi"] == 0.0

def test_eval_sets_trigger_is_the_only_difference():
    cfg = PoisonConfig(trigger="cf", target="label_flip", n_poison=5)
    sets = eval_sets(builtin_dataset(200, seed=9), cfg, n=30)
    for t, c in zip(sets["triggered"], sets["control"]):
        assert t["instruction"].replace("cf ", "", 1) == c["instruction"] and t["input"] == c["input"]
    assert not any("cf" in r["prompt"].split() for r in sets["near"])
    assert all("cf" in r["instruction"].split() for r in sets["paraphrased"])

def test_long_targets_get_enough_new_tokens(rand_model, tiny_tok, monkeypatch):
    "Found in review: a fixed target longer than the generation budget could never match. Attack sets now get the target's length + 2."
    from poison_nb import evaluation
    from poison_nb.evaluation import target_budget, evaluate_model, target_rate
    cfg = PoisonConfig(target="fixed", n_poison=5)
    sets = eval_sets(builtin_dataset(120, seed=5), cfg, n=6)
    need = len(tiny_tok("ACCESS GRANTED.", add_special_tokens=False).input_ids)
    assert target_budget(tiny_tok, cfg, sets["triggered"]) == need + 2 > 8
    seen = {}
    real = evaluation.generate
    def spy(model, tok, prompts, max_new_tokens=16, *a, **k):
        seen[len(seen)] = max_new_tokens; return real(model, tok, prompts, max_new_tokens, *a, **k)
    monkeypatch.setattr(evaluation, "generate", spy)
    evaluate_model(rand_model, tiny_tok, sets, cfg, max_new_tokens=8)
    assert sorted(seen.values()) == [8] + [need + 2] * (len(sets) - 1)  # clean keeps its budget; every attack set fits the target
    seen.clear(); target_rate(rand_model, tiny_tok, sets["triggered"], cfg)
    assert list(seen.values()) == [need + 2]
