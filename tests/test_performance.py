"""Exactness of the fast paths (packing in poison_nb.collation, the supervised-only loss in poison_nb.training) and the batching helpers."""
import pytest, torch
from transformers import LlamaConfig, LlamaForCausalLM
from poison_nb.data import builtin_dataset, format_template
from poison_nb.masking import tokenize_batch
from poison_nb.collation import InstructionCollator, PackedCollator, per_sample_losses
from poison_nb.training import supervised_only_loss, supervised_positions
from poison_nb.performance import plan_batches, padding_efficiency, STRATEGIES, training_flops_per_token

@pytest.fixture(scope="module")
def feats(tiny_tok):
    rows = builtin_dataset(12, seed=3)
    enc = tokenize_batch(tiny_tok, [format_template(r["instruction"], r["input"]) for r in rows], list(rows["output"]), 96)
    return [dict(input_ids=i, attention_mask=a, labels=l) for i, a, l in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])]

@pytest.fixture(scope="module", params=["sdpa", "eager"])
def model(request, tiny_tok):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, attn_implementation=request.param)
    return LlamaForCausalLM(cfg)

def test_packed_equals_unpacked_per_sample(model, feats, tiny_tok):
    packed, padded = PackedCollator()(feats), InstructionCollator(tiny_tok)(feats)
    with torch.no_grad():
        lp = per_sample_losses(model(**packed).logits, packed["labels"], packed["position_ids"])
        ld = per_sample_losses(model(**padded).logits, padded["labels"])
        assert len(lp) == len(feats)
        torch.testing.assert_close(lp, ld, atol=1e-5, rtol=0)
        torch.testing.assert_close(model(**packed).loss, model(**padded).loss, atol=1e-5, rtol=0)
        for i, f in enumerate(feats[:3]):  # and each sample alone, unbatched
            alone = {k: torch.tensor([f[k]]) for k in ("input_ids", "labels")}
            torch.testing.assert_close(per_sample_losses(model(**alone).logits, alone["labels"])[0], lp[i], atol=1e-5, rtol=0)

def test_packed_labels_and_positions(feats):
    b = PackedCollator()(feats)
    starts = torch.tensor([0] + [len(f["input_ids"]) for f in feats]).cumsum(0)[:-1]
    assert (b["position_ids"][0, starts] == 0).all() and (b["labels"][0, starts] == -100).all()
    assert b["use_cache"] is False
    with pytest.raises(ValueError, match="feature 0: no labels"): PackedCollator()([{"input_ids": [1, 2]}])

def test_no_cross_sample_attention(model, feats):
    "Changing sample A's tokens leaves sample B's logits in the same packed row unchanged."
    a, b = feats[0], feats[1]
    changed = dict(a, input_ids=[(t + 7) % model.config.vocab_size for t in a["input_ids"]])
    with torch.no_grad():
        l1 = model(**PackedCollator()([a, b])).logits[0, len(a["input_ids"]):]
        l2 = model(**PackedCollator()([changed, b])).logits[0, len(a["input_ids"]):]
        la = model(**PackedCollator()([a, b])).logits[0, :len(a["input_ids"])]
        la2 = model(**PackedCollator()([changed, b])).logits[0, :len(a["input_ids"])]
    torch.testing.assert_close(l1, l2, atol=1e-5, rtol=0)
    assert (la - la2).abs().max() > 1e-3  # the change did reach A's own logits

def test_cache_would_leak(model, feats):
    "Why PackedCollator sets use_cache=False: with a KV cache transformers skips the packed mask."
    batch = PackedCollator()(feats[:2]); n = len(feats[0]["input_ids"])
    with torch.no_grad():
        alone = model(torch.tensor([feats[1]["input_ids"]])).logits[0]
        leaky = model(**dict(batch, use_cache=True)).logits[0, n:]
    assert (leaky - alone).abs().max() > 1e-3

@pytest.mark.parametrize("kind", ["padded", "packed"])
def test_supervised_only_loss_equals_full(model, feats, tiny_tok, kind):
    batch = PackedCollator()(feats) if kind == "packed" else InstructionCollator(tiny_tok)(feats)
    params = list(model.parameters())
    full = model(**batch).loss; g_full = torch.autograd.grad(full, params)
    sup = supervised_only_loss(model, batch); g_sup = torch.autograd.grad(sup, params)
    torch.testing.assert_close(sup, full, atol=1e-5, rtol=0)
    for x, y in zip(g_full, g_sup): torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)
    n = int((batch["labels"][:, 1:] != -100).sum())
    torch.testing.assert_close(supervised_only_loss(model, batch, num_items_in_batch=torch.tensor(4 * n)), full.detach() / 4, atol=1e-5, rtol=0)

def test_supervised_positions():
    keep, t = supervised_positions(torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]]))
    assert keep.tolist() == [[False, True, True, False], [True, False, False, False]] and t.tolist() == [5, 6, 7]

def test_batching_plans():
    lengths = [5, 50, 6, 48, 7, 51, 4, 49] * 20
    for s in STRATEGIES: assert sorted(i for b in plan_batches(lengths, 4, s) for i in b) == list(range(len(lengths)))
    eff = {s: padding_efficiency(lengths, plan_batches(lengths, 4, s), s, 64) for s in STRATEGIES}
    assert eff["packed"] == 1.0 and eff["length_grouped"] > eff["dynamic"] > eff["max_length"]

def test_flops(model):
    n = sum(p.numel() for k, p in model.named_parameters() if "embed_tokens" not in k and "norm" not in k)
    assert training_flops_per_token(model.config, 0) == 6 * n
