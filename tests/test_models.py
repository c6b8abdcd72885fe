"Models: presets, deterministic tiny, offline small, LoRA, clear errors."
import pytest, torch
from poison_nb.models import PRESETS, get_preset, load_model, n_params, tiny_config
from poison_nb.tokenizers import tiny_tokenizer

def test_presets():
    assert {"tiny", "small", "smollm2-360m", "smollm2-1.7b", "qwen2.5-0.5b", "qwen2.5-1.5b"} <= set(PRESETS)
    assert get_preset("org/some-model").source == "hub"
    with pytest.raises(ValueError, match="unknown preset 'huge'"): get_preset("huge")

def test_tiny_deterministic_from_seed():
    a, tok = load_model("tiny", seed=0); b, _ = load_model("tiny", seed=0); c, _ = load_model("tiny", seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert a.config.vocab_size == len(tok) and tok.pad_token_id == tok.eos_token_id
    assert a.config.model_type == "llama" and a.config.tie_word_embeddings

def test_tiny_overrides_and_errors():
    m, _ = load_model("tiny", hidden_size=32, intermediate_size=64)
    assert m.config.hidden_size == 32
    with pytest.raises(ValueError, match="only apply to the 'tiny' preset"): load_model("small", hidden_size=32)
    with pytest.raises(ValueError, match="dtype must be"): load_model("tiny", dtype="float8")

def test_lora():
    m, _ = load_model("tiny", lora=dict(r=4))
    assert type(m).__name__ == "PeftModelForCausalLM" and n_params(m, trainable_only=True) < n_params(m) / 10

def test_small_offline():
    from poison_nb.tokenizers import smollm2_gguf_dir
    try: smollm2_gguf_dir()
    except (ModuleNotFoundError, FileNotFoundError) as e: pytest.skip(str(e))
    m, tok = load_model("small")
    assert m.config.vocab_size == len(tok) == 49152 and m.dtype == torch.float32
    assert 134e6 < n_params(m) < 136e6

def test_small_from_an_empty_cache(tmp_path, monkeypatch):
    "The path every new user takes: no cache, so the GGUF is converted (it crashed on a meta-device buffer), then the cached copy is read."
    from poison_nb.tokenizers import smollm2_gguf_dir
    try: smollm2_gguf_dir()
    except (ModuleNotFoundError, FileNotFoundError) as e: pytest.skip(str(e))
    monkeypatch.setenv("POISON_NB_CACHE", str(tmp_path))
    first, tok = load_model("small", device="cpu")
    assert (tmp_path / "smollm2-135m-instruct-model" / "model.safetensors").exists() and tok.chat_template
    again, _ = load_model("small", device="cpu")
    ids = torch.tensor([[1, 504, 3257, 28, 2]])
    with torch.no_grad(): assert torch.equal(first(ids).logits, again(ids).logits)
    assert all(b.device.type == "cpu" for b in first.buffers())  # no buffer left on the meta device
