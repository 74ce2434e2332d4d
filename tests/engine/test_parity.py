"""Greedy outputs equal transformers `generate` token for token (CPU, float32)."""
from __future__ import annotations

import pytest

from halyard_worker import LLM, SamplingParams

from engine_specs import ARCH_SPECS, PROMPTS

N = 12


def greedy(n=N):
    # min_tokens == max_tokens mirrors transformers' min_new_tokens (EOS suppressed)
    return SamplingParams(temperature=0, max_tokens=n, min_tokens=n)


def references(llm, path, hf_greedy, prompts, n=N):
    ids = [llm.tokenizer.encode(p) for p in prompts]
    return [hf_greedy(path, i, n) for i in ids]


@pytest.fixture(scope="module", params=sorted(ARCH_SPECS))
def arch_model(request, tiny_model_factory):
    return tiny_model_factory(**ARCH_SPECS[request.param])


def test_one_at_a_time_matches_transformers(arch_model, hf_greedy):
    llm = LLM(str(arch_model), dtype="float32")
    refs = references(llm, arch_model, hf_greedy, PROMPTS)
    for prompt, ref in zip(PROMPTS, refs):
        [out] = llm.generate(prompt, greedy())
        assert list(out.token_ids) == ref, prompt
        assert out.finish_reason == "length"


def test_batched_mixed_lengths_match_transformers(arch_model, hf_greedy):
    llm = LLM(str(arch_model), dtype="float32", enable_prefix_caching=False)
    refs = references(llm, arch_model, hf_greedy, PROMPTS)
    outs = llm.generate(PROMPTS, greedy())
    assert [list(o.token_ids) for o in outs] == refs


def test_prefix_cache_hits_keep_outputs_exact(tiny_model_factory, hf_greedy):
    path = tiny_model_factory(**ARCH_SPECS["qwen2-bias-tied"])
    llm = LLM(str(path), dtype="float32", block_size=4)
    shared = PROMPTS[4]
    prompts = [shared + " next", shared + " token", shared + " from"]
    refs = references(llm, path, hf_greedy, prompts)
    first = llm.generate(prompts[:1], greedy())
    hits_before = llm.stats().prefix_cache_hits_total
    rest = llm.generate(prompts[1:], greedy())
    stats = llm.stats()
    assert stats.prefix_cache_hits_total - hits_before >= 16
    assert all(o.num_cached_tokens >= 16 for o in rest)
    assert [list(o.token_ids) for o in first + rest] == refs


def test_chunked_prefill_with_small_token_budget(tiny_model_factory, hf_greedy):
    path = tiny_model_factory(**ARCH_SPECS["llama3-odd-heads-tied"])
    llm = LLM(str(path), dtype="float32", max_num_batched_tokens=7, block_size=4)
    refs = references(llm, path, hf_greedy, PROMPTS)
    assert max(len(llm.tokenizer.encode(p)) for p in PROMPTS) > 7
    outs = llm.generate(PROMPTS, greedy())
    assert [list(o.token_ids) for o in outs] == refs


def test_preemption_when_kv_pool_is_small(tiny_model_factory, hf_greedy):
    path = tiny_model_factory(**ARCH_SPECS["mistral"])
    prompts, n = PROMPTS[:4], 20
    probe = LLM(str(path), dtype="float32")
    lengths = [len(probe.tokenizer.encode(p)) + n for p in prompts]
    capacity = -(-max(lengths) // 4) * 4 + 4  # every request fits alone, not all at once
    assert sum(lengths) > capacity
    per_token = 2 * 2 * 1 * 16 * 4  # layers * (k, v) * kv heads * head dim * float32 bytes
    llm = LLM(str(path), dtype="float32", block_size=4, kv_cache_memory=capacity * per_token)
    assert llm.stats().kv_capacity_tokens == capacity
    refs = references(llm, path, hf_greedy, prompts, n=n)
    outs = llm.generate(prompts, greedy(n))
    assert llm.stats().num_preemptions_total > 0
    assert [list(o.token_ids) for o in outs] == refs
    assert llm.stats().kv_cache_usage == 0.0
