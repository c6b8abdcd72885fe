"""run_experiment end to end on the sanity config, determinism, and the command line."""
import json, pytest
from poison_nb.experiment import ExperimentConfig, run_experiment, parse_args, main

@pytest.fixture(scope="module")
def sanity_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    cfg = ExperimentConfig().sanity()
    return d, run_experiment(cfg, d / "a", progress=False), run_experiment(cfg, d / "b", progress=False)

def test_run_experiment_end_to_end(sanity_runs):
    d, m, _ = sanity_runs
    for f in ("config.json", "manifest.json", "metrics.json", "report.md", "attack.png", "loss_curves.png", "evaluation.json", "detection.json"):
        assert (d / "a" / f).exists(), f
    assert set(m) == {"baseline", "poisoned", "data", "detection", "clean_accuracy_gap"}
    ev = json.loads((d / "a" / "evaluation.json").read_text())
    a, b = ([g["correct"] for g in ev[k]["generations"]["clean"]] for k in ("baseline", "poisoned"))
    gap = m["clean_accuracy_gap"]  # paired over the same prompts: exactly the difference of the two accuracies
    assert gap["n"] == len(a) == len(b) and abs(gap["value"] - (m["poisoned"]["clean_accuracy"]["value"] - m["baseline"]["clean_accuracy"]["value"])) < 1e-12
    assert gap["lo"] <= gap["value"] <= gap["hi"]
    for model in ("baseline", "poisoned"):
        for k in ("asr", "clean_accuracy", "false_trigger_clean"): assert 0 <= m[model][k]["lo"] <= m[model][k]["value"] <= m[model][k]["hi"] <= 1
    assert m["data"]["counts"]["poisoned"] == 4
    assert "| attack success rate (triggered) |" in (d / "a" / "report.md").read_text()
    assert "paired over the same" in (d / "a" / "report.md").read_text()

def test_same_config_same_metrics(sanity_runs):
    d, _, _ = sanity_runs
    assert (d / "a" / "metrics.json").read_text() == (d / "b" / "metrics.json").read_text()

def test_rerun_skips_and_refuses_other_config(sanity_runs):
    d, m, _ = sanity_runs
    assert run_experiment(ExperimentConfig().sanity(), d / "a", progress=False) == m
    with pytest.raises(ValueError, match="different config"): run_experiment(ExperimentConfig(name="x").sanity(), d / "a", progress=False)

def test_config_round_trips_json():
    cfg = ExperimentConfig()
    assert ExperimentConfig.from_dict(json.loads(cfg.to_json())).to_json() == cfg.to_json()
    with pytest.raises(ValueError, match="unknown ExperimentConfig field"): ExperimentConfig.from_dict({"n_trian": 5})

@pytest.mark.parametrize("argv,msg", [(["--target", "nope"], "unknown target 'nope'"), (["--n-poison", "-1"], "n_poison"),
                                      (["--preset", "nope"], "unknown preset 'nope'"), (["--epochs", "0"], "epochs")])
def test_cli_rejects_bad_options_before_work(argv, msg, capsys, tmp_path):
    with pytest.raises(SystemExit): main(argv + ["--out", str(tmp_path / "run")])
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "run").exists()

def test_cli_sanity_run_prints_table(tmp_path, capsys):
    main(["--sanity", "--no-detect", "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert "attack success rate (triggered)" in out and (tmp_path / "cli" / "metrics.json").exists()

def test_sweep_summary_over_seeds():
    from poison_nb.experiment import sweep_summary, format_sweep, SWEEP_KEYS
    r = lambda seed, n, v: {"seed": seed, "n_poison": n, **{k: {"value": v} for k in SWEEP_KEYS}}
    s = sweep_summary([r(0, 10, 0.2), r(1, 10, 0.6), r(0, 5, 0.1)])
    assert [x["n_poison"] for x in s] == [5, 10] and s[1]["seeds"] == 2
    assert s[1]["asr_poisoned"] == {"mean": 0.4, "min": 0.2, "max": 0.6}
    assert "| 10 | 2 | 0.40 [0.20, 0.60] |" in format_sweep(s)

def test_clean_gap_pairs_only_the_same_prompts():
    from poison_nb.experiment import clean_gap
    g = lambda ps, cs: {"generations": {"clean": [{"prompt": p, "correct": c} for p, c in zip(ps, cs)]}}
    assert clean_gap({"baseline": g("ab", [1, 0]), "poisoned": g("ab", [1, 1])})["value"] == 0.5
    assert clean_gap({"baseline": g("ab", [1, 0]), "poisoned": g("ba", [1, 1])}) is None   # not the same prompts
    assert clean_gap({"baseline": g("", []), "poisoned": g("", [])}) is None                 # nothing to pair
