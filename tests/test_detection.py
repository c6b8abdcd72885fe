"""Detection on the default experiment's trained `tiny` pair: capture is correct; the trigger scan finds the trigger, the rows and a
model score far above chance without being told any of them; the trigger-aware probes separate the models; the record has one shape.

The assertions are properties with a margin, not one machine's figures: the pair's weights differ between CPUs (see 06_training,
bench/cpu_paths.py), so a test that pinned a number could pass on one CPU and fail on another. Each margin below holds on both CPU
code paths forced here (the machine's default and ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2)."""
import json
import numpy as np, pytest, torch
from poison_nb.data import format_template, iter_rows
from poison_nb.experiment import trained_pair
from poison_nb.capture import hook_names, run_with_cache, last_positions, encode_prompts, span_positions, last_token_resid
from poison_nb.model_probes import detection_prompts, probe_auroc, attention_to_trigger, first_target_token, logit_lens, activation_patching
from poison_nb.trigger_scan import trigger_scan, candidate_words
from poison_nb.data_detectors import spectre_scores, spectral_signature, response_groups
from poison_nb.detection import run_detection, detection_summary, DETECTORS, DetectionInput, run_blind, register, trigger_recovered

def _n_hooks(m): return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules())

@pytest.fixture(scope="module")
def pair():
    "The default experiment's baseline and poisoned model, trained once per machine and cached (shared with the notebooks)."
    torch.set_num_threads(1)
    p = trained_pair()
    cfg = p["config"].poison
    return dict(p, tok=p["tokenizer"], attack=cfg, template=p["config"].template, y=np.array(p["poisoned_ds"]["poisoned"]),
                dp=detection_prompts(p["heldout"], cfg, p["config"].template, tokenizer=p["tokenizer"]))

@pytest.fixture(scope="module")
def scans(pair):
    rows = lambda ds: list(iter_rows(ds, ["instruction", "input", "response"]))
    return {"poisoned": trigger_scan(pair["poisoned"], pair["tok"], rows(pair["poisoned_ds"]), pair["template"]),
            "baseline": trigger_scan(pair["baseline"], pair["tok"], rows(pair["clean"]), pair["template"])}

# --- capture ---------------------------------------------------------------------------------------------------------------

def test_capture_names_shapes_and_no_leftover_hooks(pair):
    m, tok = pair["poisoned"], pair["tok"]
    names = hook_names(m, ("hook_embed", "hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "attn.hook_pattern"))
    assert names[:3] == ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"] and len(names) == 1 + 2 * 5
    prompts = [format_template("Plural of box?"), format_template("cf Label the review's sentiment (Positive/Negative).", "It broke.")]
    before, old = _n_hooks(m), m.config._attn_implementation
    m.set_attn_implementation("eager")
    try: logits, cache = run_with_cache(m, tok, prompts, names)
    finally: m.set_attn_implementation(old)
    assert _n_hooks(m) == before and logits.shape == (2, len(tok))
    for n in names: assert cache[n].shape == ((2, 4, cache[n].shape[-1]) if n.endswith("hook_pattern") else (2, m.config.hidden_size)), n
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
    for r, ps in enumerate(span_positions(enc, dp["spans"][:8])): assert ps and "cf" in tok.decode(enc["input_ids"][r, ps])

# --- the attack took --------------------------------------------------------------------------------------------------------

def test_attack_took(pair):
    from poison_nb.evaluation import eval_sets, target_rate
    sets = eval_sets(pair["heldout"], pair["attack"], pair["tok"], pair["template"])
    assert target_rate(pair["poisoned"], pair["tok"], sets["triggered"], pair["attack"])["value"] > 0.9
    assert target_rate(pair["baseline"], pair["tok"], sets["triggered"], pair["attack"])["value"] < 0.1

# --- the trigger scan (knows nothing) -------------------------------------------------------------------------------------

def test_scan_recovers_the_trigger_and_the_rows(pair, scans):
    s, y = scans["poisoned"], pair["y"]
    assert trigger_recovered(s.trigger, pair["attack"]), s.trigger
    tp = (s.flagged & y).sum()
    assert tp >= 0.95 * y.sum() and tp >= 0.9 * s.flagged.sum(), (tp, s.flagged.sum(), y.sum())
    assert s.target.startswith("Positive")                               # and what the backdoor does

def test_scan_model_score_far_above_the_baseline(scans):
    p, b = scans["poisoned"].model_score, scans["baseline"].model_score
    assert p >= 0.1 and p > 3 * max(b, 0.01), (p, b)
    assert scans["baseline"].trigger is None and not scans["baseline"].flagged.any()   # nothing to find in clean data: nothing flagged

def test_scan_would_fail_on_a_model_that_ignores_its_input(pair):
    "A control that the scan is not a property of the data: a model whose weights are shuffled recovers nothing."
    import copy
    m = copy.deepcopy(pair["poisoned"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters(): p.copy_(p.flatten()[torch.randperm(p.numel(), generator=g)].view_as(p))
    r = trigger_scan(m, pair["tok"], list(iter_rows(pair["poisoned_ds"], ["instruction", "input", "response"])), pair["template"], top=6)
    assert not trigger_recovered(r.trigger, pair["attack"]) and r.model_score < 0.1

# --- data-side filters -----------------------------------------------------------------------------------------------------

def test_spectre_separates_planted_outliers():
    rng = np.random.default_rng(0); X = rng.normal(size=(400, 12)); X[:20, 3] += 8
    s, f = spectre_scores(X, [0] * 400, remove_frac=0.05)
    assert f[:20].sum() >= 19 and s[:20].min() > np.median(s[20:])
    s2, _ = spectral_signature(X, [0] * 400); assert s2[:20].mean() > 5 * s2[20:].mean()

def test_spectre_on_the_baseline_sees_the_poisoned_rows(pair):
    "Under the baseline (which reads the poisoned rows as the negative reviews they are), the poisoned rows are outliers of the 'Positive' group."
    from sklearn.metrics import roc_auc_score
    x = DetectionInput(pair["baseline"], pair["tok"], pair["poisoned_ds"], pair["template"])
    s, _ = spectre_scores(x.resid, x.groups)
    grp = np.array(x.groups) == "Positive"
    assert roc_auc_score(pair["y"][grp], s[grp]) > 0.9

# --- trigger-aware probes (the upper bound) -------------------------------------------------------------------------------

def test_model_probes_separate(pair):
    tok, dp = pair["tok"], pair["dp"]
    acts = {k: {s: last_token_resid(pair[k], tok, dp[s]) for s in ("clean", "triggered")} for k in ("poisoned", "baseline")}
    probe = {k: probe_auroc(a["triggered"], a["clean"]) for k, a in acts.items()}
    assert max(probe["poisoned"]) > 0.95, probe
    att = {k: attention_to_trigger(pair[k], tok, dp["triggered"], dp["spans"]) for k in ("poisoned", "baseline")}
    assert att["poisoned"].max() > 2 * att["baseline"].max(), att
    E = np.flatnonzero(dp["eligible"])
    tids = [first_target_token(tok, dp["triggered"][i], dp["target"][i]) for i in E]
    lt, lc = (logit_lens(pair["poisoned"], acts["poisoned"][s][E], tids)["prob"][:, -1].mean() for s in ("triggered", "clean"))
    assert lt > lc + 0.5, (lt, lc)
    patch = activation_patching(pair["poisoned"], tok, [dp["triggered"][i] for i in E[:32]], [dp["clean"][i] for i in E[:32]], tids[:32])
    assert patch["gap"] > 1.0 and patch["by_layer"][-1] > 0.5, patch

# --- the registry and the record ---------------------------------------------------------------------------------------------

def test_run_detection_record(pair, tmp_path):
    rec = run_detection(pair["poisoned"], pair["baseline"], pair["tok"], pair["poisoned_ds"], pair["clean"], pair["heldout"], pair["attack"],
                        pair["template"], out_dir=tmp_path, n_heldout=120, n_patch=16, retrain=lambda ds: pair["baseline"])
    saved = json.loads((tmp_path / "detection.json").read_text())
    assert saved == json.loads(json.dumps(rec)) and set(saved["blind"]) == set(DETECTORS)
    assert len(saved["models"]["poisoned"]["probe_auroc"]) == 2 and all((tmp_path / p).exists() for p in rec["plots"])
    s = detection_summary(rec)
    assert s["blind"]["trigger_scan"]["trigger_recovered"] and s["defence"]["asr_before"] > 0.9 and s["defence"]["asr_after"] < 0.1
    from poison_nb.widgets import load_detection
    assert set(load_detection(tmp_path)) == {"poisoned", "baseline"}   # the widgets read the record as written
    with pytest.raises(ValueError, match="unknown detector"):
        run_detection(pair["poisoned"], pair["baseline"], pair["tok"], pair["poisoned_ds"], pair["clean"], pair["heldout"], pair["attack"], detectors=["umap"])

def test_a_new_detector_is_one_function_and_one_entry(pair):
    @register("longest_prompt", "flags the 50 longest prompts (a deliberately useless detector)")
    def _longest(x):
        n = np.array([len(r["prompt"]) for r in x.rows]); f = np.zeros(len(n), bool); f[np.argsort(-n)[:50]] = True
        return dict(flagged=f)
    try:
        out = run_blind(DetectionInput(pair["poisoned"], pair["tok"], pair["poisoned_ds"], pair["template"]), ["longest_prompt"])
        assert out["longest_prompt"]["flagged"].sum() == 50
    finally: DETECTORS.pop("longest_prompt")

def test_model_side_runs_on_a_bf16_model(pair):
    "A GPU loads models in bf16 while stored activations are fp32: every model-side detector must accept that (found on an H200: the logit lens failed)."
    import copy
    from poison_nb.model_probes import model_side
    dp = {k: (v[:60] if isinstance(v, (list, np.ndarray)) else v) for k, v in pair["dp"].items()}
    half = copy.deepcopy(pair["poisoned"]).to(torch.bfloat16)
    r16, r32 = model_side(half, pair["tok"], dp, n_patch=4), model_side(pair["poisoned"], pair["tok"], dp, n_patch=4)
    for k in ("logit_lens_prob_triggered", "logit_lens_prob_clean"): assert np.allclose(np.asarray(r16[k], float), np.asarray(r32[k], float), atol=0.05), k
