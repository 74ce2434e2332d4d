"""Engine test helpers: transformers greedy references on tiny models."""
from __future__ import annotations

import pytest

@pytest.fixture(scope="session")
def hf_greedy():
    """hf_greedy(model_dir, prompt_ids, n) -> n greedy token ids from transformers."""
    import torch
    import transformers

    models: dict = {}

    def run(path, prompt_ids: list[int], n: int) -> list[int]:
        key = str(path)
        if key not in models:
            models[key] = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = models[key].generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                       max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        return out[0, len(prompt_ids):].tolist()

    return run
