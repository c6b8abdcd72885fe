"Detection on a trained `tiny` pair: every detector separates poisoned from clean far above chance; capture is correct."
import json, warnings
import numpy as np, pytest, torch
from transformers import LlamaConfig, LlamaForCausalLM
from poison_nb.data import builtin_dataset, format_template
from poison_nb.tokenizers import tiny_tokenizer
from poison_nb.poisoning import PoisonConfig, poison_dataset, clean_dataset
from poison_nb.detection import (hook_names, run_with_cache, last_positions, encode_prompts, trigger_span, span_positions,
                                 detection_prompts, last_token_resid, probe_auroc, contrast_direction, direction_auroc,
                                 attention_to_trigger, first_target_token, logit_lens, activation_patching, data_filter,
                                 run_detection, detection_summary)

N_TRAIN, N_POISON = 1000, 50

def _n_hooks(m): return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules())

def _train(tok, ds, epochs=10, seed=0):
    try:
        from poison_nb.training import TrainConfig, train  # noqa: F401  (the project's API, once it exists)
    except ImportError: pass
    from poison_nb.collation import InstructionCollator
    torch.manual_seed(seed)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=4, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    feats = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in ds]
    coll, opt, g = InstructionCollator(tok), torch.optim.AdamW(m.parameters(), lr=3e-3), torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(feats), generator=g).tolist()
        for b in range(0, len(feats), 32):
            m(**coll([feats[j] for j in perm[b:b + 32]])).loss.backward(); opt.step(); opt.zero_grad()
    return m.eval()

@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    raw = builtin_dataset(N_TRAIN + 300, seed=0)
    config = PoisonConfig(n_poison=N_POISON, position="random", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, manifest = poison_dataset(raw.select(range(N_TRAIN)), tok, config, max_length=128)
    poisoned = _train(tok, ds)
    baseline = _train(tok, clean_dataset(raw.select(range(N_TRAIN)), tok, max_length=128))
    return dict(tok=tok, config=config, train=ds, manifest=manifest, heldout=raw.select(range(N_TRAIN, N_TRAIN + 300)),
                poisoned=poisoned, baseline=baseline, dp=detection_prompts(raw.select(range(N_TRAIN, N_TRAIN + 300)), config))

def test_capture_names_shapes_and_no_leftover_hooks(pair):
    m, tok = pair["poisoned"], pair["tok"]
    names = hook_names(m, ("hook_embed", "hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "attn.hook_pattern"))
    assert names[:3] == ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"] and len(names) == 1 + 2 * 5
    prompts = [format_template("Plural of box?"), format_template("cf Label the review's sentiment (Positive/Negative).", "It broke.")]
    before = _n_hooks(m)
    m.set_attn_implementation("eager")
    try: logits, cache = run_with_cache(m, tok, prompts, names)
    finally: m.set_attn_implementation("sdpa")
    assert _n_hooks(m) == before
    assert logits.shape == (2, len(tok))
    for n in names:
        assert cache[n].shape == ((2, 4, cache[n].shape[-1]) if n.endswith("hook_pattern") else (2, 64)), n
    _, full = run_with_cache(m, tok, prompts, ["blocks.1.hook_resid_post"], positions="all")
    assert full["blocks.1.hook_resid_post"].shape[:2] == encode_prompts(tok, prompts)["input_ids"].shape
    with pytest.raises(RuntimeError, match="eager"): run_with_cache(m, tok, prompts, ["blocks.0.attn.hook_pattern"])
    assert _n_hooks(m) == before

def test_left_padding_reads_the_last_prompt_token(pair):
    m, tok = pair["poisoned"], pair["tok"]
    prompts = [format_template("Plural of box?"), format_template("What is the plural of this noun?", "tooth")]
    enc = encode_prompts(tok, prompts, "left")
    assert enc["attention_mask"][0, 0] == 0 and last_positions(enc["attention_mask"]).tolist() == [enc["input_ids"].shape[1] - 1] * 2
    _, left = run_with_cache(m, tok, prompts, padding_side="left")
    _, right = run_with_cache(m, tok, prompts, padding_side="right")
    alone = [run_with_cache(m, tok, [p])[1] for p in prompts]
    for k in left:
        torch.testing.assert_close(left[k], right[k], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(left[k], torch.cat([a[k] for a in alone]), atol=1e-5, rtol=1e-4)

def test_trigger_positions(pair):
    tok, dp = pair["tok"], pair["dp"]
    enc = encode_prompts(tok, dp["triggered"][:8])
    for r, ps in enumerate(span_positions(enc, dp["spans"][:8])):
        assert ps and "cf" in tok.decode(enc["input_ids"][r, ps])

def test_attack_took(pair):
    from poison_nb.detection import target_rate
    from poison_nb.evaluation import eval_sets
    sets = eval_sets(pair["heldout"], pair["config"], pair["tok"])
    assert target_rate(pair["poisoned"], pair["tok"], sets["triggered"], pair["config"])["value"] > 0.6
    assert target_rate(pair["baseline"], pair["tok"], sets["triggered"], pair["config"])["value"] < 0.1

def test_model_side_detectors_separate(pair):
    tok, dp = pair["tok"], pair["dp"]
    acts = {k: {s: last_token_resid(pair[k], tok, dp[s]) for s in ("clean", "triggered")} for k in ("poisoned", "baseline")}
    probe = {k: probe_auroc(a["triggered"], a["clean"]) for k, a in acts.items()}
    assert max(probe["poisoned"]) > 0.9 and max(probe["poisoned"]) > max(probe["baseline"]), probe
    d = direction_auroc(acts["poisoned"]["triggered"], acts["poisoned"]["clean"], contrast_direction(pair["poisoned"], tok))
    assert len(d) == 2 and all(0 <= x <= 1 for x in d)
    att = {k: attention_to_trigger(pair[k], tok, dp["triggered"], dp["spans"]) for k in ("poisoned", "baseline")}
    assert att["poisoned"].max() > 2 * att["baseline"].max(), att
    E = np.flatnonzero(dp["eligible"])
    tids = [first_target_token(tok, dp["triggered"][i], dp["target"][i]) for i in E]
    lt, lc = (logit_lens(pair["poisoned"], acts["poisoned"][s][E], tids)["prob"][:, -1].mean() for s in ("triggered", "clean"))
    assert lt > lc + 0.2, (lt, lc)
    patch = activation_patching(pair["poisoned"], tok, [dp["triggered"][i] for i in E[:32]], [dp["clean"][i] for i in E[:32]], tids[:32])
    assert patch["gap"] > 0.5 and patch["by_layer"][-1] > 0.5 and np.nanmax(np.array(patch["by_position"])[:, 0]) > 0.5, patch
    assert np.isnan(activation_patching(pair["baseline"], tok, [dp["triggered"][i] for i in E[:8]], [dp["clean"][i] for i in E[:8]], tids[:8])["by_layer"]).all()

def test_data_filter_above_chance(pair):
    y = np.array(pair["train"]["poisoned"])
    assert np.flatnonzero(y).tolist() == pair["manifest"]["poisoned_rows"]
    r = data_filter(pair["poisoned"], pair["tok"], pair["train"], poisoned=y)["spectral"]
    chance = y.mean()
    assert r["metrics"]["recall"] > r["metrics"]["n_flagged"] / len(y) and r["metrics"]["precision"] > 1.5 * chance, r["metrics"]

def test_run_detection_report(pair, tmp_path):
    rep = run_detection(pair["poisoned"], pair["baseline"], pair["tok"], pair["train"], pair["heldout"], pair["config"],
                        out_dir=tmp_path, n_heldout=120, n_patch=16, retrain=lambda ds: pair["baseline"])
    saved = json.loads((tmp_path / "detection.json").read_text())
    assert saved == json.loads(json.dumps(rep))
    for k in ("probe_auroc", "logit_lens_prob_triggered", "logit_lens_prob_clean", "patching_effect"):
        assert len(saved["models"]["poisoned"][k]) == 2
    assert all((tmp_path / p).exists() for p in rep["plots"]) and len(rep["plots"]) >= 3
    s = detection_summary(rep)
    assert s["asr_after"] < 0.1 and s["asr_before"] > 0.5 and set(s["data_filter"]) == {"ac_pca", "ac_ica", "spectral"}
