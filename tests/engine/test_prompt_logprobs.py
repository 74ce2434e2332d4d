"""SamplingParams.prompt_logprobs: each prompt token's log-probability given
the tokens before it, equal to transformers' full forward (CPU, float32)."""
from __future__ import annotations

import math

import pytest
import torch
import transformers

from halyard_worker import LLM, SamplingParams
from halyard_worker.engine.types import InvalidParameter

PROMPT = "Paged attention stores keys and values in fixed-size blocks. Continuous batching lets new requests join"


def reference(path, ids):
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.float(), -1)  # [T, V]: row t predicts token t + 1


def check(out, ref, k):
    ids = out.prompt_token_ids
    assert out.prompt_logprobs is not None and len(out.prompt_logprobs) == len(ids)
    assert out.prompt_logprobs[0] is None
    for t in range(1, len(ids)):
        entry = out.prompt_logprobs[t]
        assert entry.sampled.token_id == ids[t]
        assert math.isclose(entry.sampled.logprob, ref[t - 1, ids[t]].item(), abs_tol=1e-4)
        top_ids = [e.token_id for e in entry.top]
        assert len(top_ids) == k
        assert top_ids == ref[t - 1].topk(k).indices.tolist()


@pytest.mark.parametrize("chunk", [2048, 16, 1])  # whole prompt in one step; chunked prefill; one-token chunks
def test_prompt_logprobs_match_transformers(tiny_model, chunk):
    llm = LLM(str(tiny_model), dtype="float32", max_num_batched_tokens=chunk)
    ids = llm.tokenizer.encode(PROMPT)
    assert len(ids) > 2 * 16  # several chunks when chunk=16
    [out] = llm.generate(ids, SamplingParams(temperature=0, max_tokens=2, prompt_logprobs=3))
    check(out, reference(tiny_model, ids), 3)
    assert len(out.token_ids) == 2


def test_prefix_cache_does_not_drop_prompt_logprobs(tiny_model):
    llm = LLM(str(tiny_model), dtype="float32", enable_prefix_caching=True)
    ids = llm.tokenizer.encode(PROMPT)
    llm.generate(ids, SamplingParams(temperature=0, max_tokens=1))  # fills the prefix cache
    [plain, scored] = llm.generate([ids, ids], [SamplingParams(temperature=0, max_tokens=1),
                                                SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0)])
    assert plain.prompt_logprobs is None and plain.num_cached_tokens > 0
    check(scored, reference(tiny_model, ids), 0)


def test_prompt_logprobs_is_validated():
    with pytest.raises(InvalidParameter) as err:
        SamplingParams(prompt_logprobs=-1)
    assert err.value.param == "prompt_logprobs"
