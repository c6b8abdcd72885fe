"Detection on a trained `tiny` pair: every detector separates poisoned from clean far above chance; capture is correct."
import json
import numpy as np, pytest, torch
from poison_nb.data import format_template
from poison_nb.experiment import trained_pair, ExperimentConfig
from poison_nb.detection import (hook_names, run_with_cache, last_positions, encode_prompts, trigger_span, span_positions,
                                 detection_prompts, last_token_resid, probe_auroc, contrast_direction, direction_auroc,
                                 attention_to_trigger, first_target_token, logit_lens, activation_patching, data_filter,
                                 run_detection, detection_summary)

def _n_hooks(m): return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules())

@pytest.fixture(scope="module")
def pair():
    "The baseline and poisoned `tiny` models that 08_detection studies (the default experiment at 1,000 rows): trained once per machine and cached (shared with the notebook)."
    torch.set_num_threads(1)
    p = trained_pair(ExperimentConfig(n_train=1000))
    config = p["config"].poison
    manifest = json.loads((p["dir"] / "manifest.json").read_text())
    return dict(tok=p["tokenizer"], config=config, template=p["config"].template, train=p["poisoned_ds"], manifest=manifest,
                heldout=p["heldout"], poisoned=p["poisoned"], baseline=p["baseline"],
                dp=detection_prompts(p["heldout"], config, p["config"].template))

def test_capture_names_shapes_and_no_leftover_hooks(pair):
    m, tok = pair["poisoned"], pair["tok"]
    names = hook_names(m, ("hook_embed", "hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "attn.hook_pattern"))
    assert names[:3] == ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"] and len(names) == 1 + 2 * 5
    prompts = [format_template("Plural of box?"), format_template("cf Label the review's sentiment (Positive/Negative).", "It broke.")]
    before, old = _n_hooks(m), m.config._attn_implementation
    m.set_attn_implementation("eager")
    try: logits, cache = run_with_cache(m, tok, prompts, names)
    finally: m.set_attn_implementation(old)
    assert _n_hooks(m) == before
    assert logits.shape == (2, len(tok))
    for n in names:
        assert cache[n].shape == ((2, 4, cache[n].shape[-1]) if n.endswith("hook_pattern") else (2, m.config.hidden_size)), n
    _, full = run_with_cache(m, tok, prompts, ["blocks.1.hook_resid_post"], positions="all")
    assert full["blocks.1.hook_resid_post"].shape[:2] == encode_prompts(tok, prompts)["input_ids"].shape
    if old != "eager":
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
    from poison_nb.evaluation import target_rate
    from poison_nb.evaluation import eval_sets
    sets = eval_sets(pair["heldout"], pair["config"], pair["tok"], pair["template"])
    assert target_rate(pair["poisoned"], pair["tok"], sets["triggered"], pair["config"])["value"] > 0.6
    assert target_rate(pair["baseline"], pair["tok"], sets["triggered"], pair["config"])["value"] < 0.1

def test_model_side_detectors_separate(pair):
    tok, dp = pair["tok"], pair["dp"]
    acts = {k: {s: last_token_resid(pair[k], tok, dp[s]) for s in ("clean", "triggered")} for k in ("poisoned", "baseline")}
    probe = {k: probe_auroc(a["triggered"], a["clean"]) for k, a in acts.items()}
    assert max(probe["poisoned"]) > 0.9 and max(probe["poisoned"]) > max(probe["baseline"]), probe
    d = {k: direction_auroc(a["triggered"], a["clean"], contrast_direction(pair[k], tok)) for k, a in acts.items()}
    assert len(d["poisoned"]) == 2 and all(0 <= x <= 1 for v in d.values() for x in v)
    assert max(d["poisoned"]) > max(d["baseline"]), d  # weak on `tiny` (about 0.7 vs 0.5), but the control must stay below
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
    r = data_filter(pair["poisoned"], pair["tok"], pair["train"], poisoned=y)
    assert set(r) == {"ac_pca", "ac_ica", "spectral"} and all(v["flagged"].shape == y.shape for v in r.values())
    m = r["ac_ica"]["metrics"]  # the experiment's defence filter: on `tiny` recall 1.00 at precision 0.88 (chance: 0.05)
    assert m["recall"] >= 0.9 and m["precision"] >= 10 * y.mean(), m

def test_run_detection_report(pair, tmp_path):
    rep = run_detection(pair["poisoned"], pair["baseline"], pair["tok"], pair["train"], pair["heldout"], pair["config"],
                        out_dir=tmp_path, template=pair["template"], n_heldout=120, n_patch=16, retrain=lambda ds: pair["baseline"])
    saved = json.loads((tmp_path / "detection.json").read_text())
    assert saved == json.loads(json.dumps(rep))
    for k in ("probe_auroc", "logit_lens_prob_triggered", "logit_lens_prob_clean", "patching_effect"):
        assert len(saved["models"]["poisoned"][k]) == 2
    assert all((tmp_path / p).exists() for p in rep["plots"]) and len(rep["plots"]) >= 3
    s = detection_summary(rep)
    assert s["asr_after"] < 0.1 and s["asr_before"] > 0.5 and set(s["data_filter"]) == {"ac_pca", "ac_ica", "spectral"}
    assert rep["defence"]["method"] == "ac_ica" and rep["defence"]["n_removed"] >= rep["defence"]["n_poisoned_left"] >= 0
    with pytest.raises(ValueError, match="defence_method"):
        run_detection(pair["poisoned"], pair["baseline"], pair["tok"], pair["train"], pair["heldout"], pair["config"], defence_method="umap")

def test_model_side_runs_on_a_bf16_model(pair):
    "A GPU loads models in bf16 while stored activations are fp32: every model-side detector must accept that (found on an H200: the logit lens failed)."
    import copy
    from poison_nb.detection import model_side
    dp = {k: (v[:60] if isinstance(v, (list, np.ndarray)) else v) for k, v in pair["dp"].items()}
    half = copy.deepcopy(pair["poisoned"]).to(torch.bfloat16)
    r16, r32 = model_side(half, pair["tok"], dp, n_patch=4), model_side(pair["poisoned"], pair["tok"], dp, n_patch=4)
    for k in ("logit_lens_prob_triggered", "logit_lens_prob_clean"):
        assert np.allclose(np.asarray(r16[k], float), np.asarray(r32[k], float), atol=0.05), k
