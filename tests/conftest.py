import os, pytest
from datasets.utils.logging import disable_progress_bar
from poison_nb.tokenizers import smollm2_tokenizer, metaspace_tokenizer, tiny_tokenizer

disable_progress_bar()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

@pytest.fixture(scope="session")
def smol(): return smollm2_tokenizer()

@pytest.fixture(scope="session")
def meta(): return metaspace_tokenizer()

@pytest.fixture(scope="session")
def tiny_tok(): return tiny_tokenizer()

@pytest.fixture(scope="session", params=["smollm2", "metaspace"])
def any_tok(request, smol, meta): return {"smollm2": smol, "metaspace": meta}[request.param]
