"""The path a Colab user takes, offline: a Hub model (here a local folder, which `transformers` treats exactly like a Hub id) with
SmolLM2's tokenizer and chat template, through every stage of `run_experiment` (data, train, evaluate, detect, report), with and
without LoRA, then the widgets on the run folder. Every Hub preset (`smollm2-360m`, `qwen2.5-*`, any `org/name`) runs this code."""
import json
import pytest, torch
from transformers import LlamaConfig, LlamaForCausalLM
from poison_nb.experiment import ExperimentConfig, run_experiment, parse_args
from poison_nb.models import get_preset, load_model
from poison_nb.tokenizers import smollm2_tokenizer
from poison_nb.training import TrainConfig

@pytest.fixture(scope="module")
def hub_model(tmp_path_factory):
    "A small Llama with SmolLM2's tokenizer and chat template, saved as a Hub model folder."
    d = tmp_path_factory.mktemp("hub") / "org--tiny-chat"
    tok = smollm2_tokenizer()
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=True,
                                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    m.save_pretrained(d); tok.save_pretrained(d)
    return str(d)

def test_a_hub_id_is_a_chat_preset(hub_model):
    p = get_preset(hub_model)
    assert p.source == "hub" and p.template == "chat" and p.model_id == hub_model
    model, tok = load_model(hub_model, device="cpu")
    assert tok.chat_template and model.config.hidden_size == 64

@pytest.mark.parametrize("lora", [False, True])
def test_every_stage_with_the_chat_template(hub_model, tmp_path, lora):
    cfg = ExperimentConfig(train=TrainConfig.for_preset(hub_model, lora=lora, lora_r=4, dtype="float32")).sanity()
    assert cfg.template == "chat"
    m = run_experiment(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert set(m) >= {"baseline", "poisoned", "detection"} and (run / "report.md").exists()
    assert all((run / "stages" / f"{s}.done").exists() for s in ("data", "train", "evaluate", "detect", "report"))
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["poisoned"]["generations"]["triggered"][0]["prompt"].startswith("<|im_start|>")  # chat prompts everywhere
    rec = json.loads((run / "detection" / "detection.json").read_text())
    assert set(rec["blind"]) >= {"trigger_scan"} and len(rec["models"]["poisoned"]["probe_auroc"]) == 2
    if lora: assert (run / "poisoned" / "model" / "adapter_config.json").exists()
    from poison_nb.widgets import load_detection, detection_explorer, playground_for_run
    assert set(load_detection(run)) == {"poisoned", "baseline"}
    assert "layer 0</b> of 2" in detection_explorer(run).html.value
    pg = playground_for_run(run, "Is this review Positive or Negative?", "It broke.", max_new_tokens=3)
    pg.use_trigger.value = True; pg.generate()
    assert "<b>poisoned</b>" in pg.html.value and "<b>baseline</b>" in pg.html.value

def test_cli_takes_a_model_folder(hub_model, tmp_path):
    cfg, _ = parse_args(["--preset", hub_model, "--sanity", "--no-detect", "--max-length", "200"])
    assert cfg.template == "chat" and cfg.train.preset == hub_model and cfg.train.max_length == 200
