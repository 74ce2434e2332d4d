"""Batched prefill: every prefill chunk of a step in one attention call gives
the same greedy tokens as attending one sequence at a time (CPU, float32)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker import LLM, SamplingParams  # noqa: E402
from halyard_worker.model import ops, torch_ops  # noqa: E402

from engine_specs import ARCH_SPECS, PROMPTS  # noqa: E402

N = 10


def greedy():
    return SamplingParams(temperature=0, max_tokens=N, min_tokens=N)


def per_sequence(q, k, v, k_cache, v_cache, prefill, scale):
    """The previous path: one SDPA per chunk over a copy of its whole context."""
    outs, start = [], 0
    for i, (n, ctx) in enumerate(zip(prefill.q_lens.tolist(), prefill.ctx_lens.tolist())):
        outs.append(torch_ops.paged_attention_prefill_seq(q[start:start + n], k_cache, v_cache,
                                                          prefill.block_tables[i], ctx, scale))
        start += n
    return torch.cat(outs)


def counting(monkeypatch, seen: list):
    """Count the batched op's calls and the chunks each call served (install
    after the engine starts: start-up installs its own op table)."""
    batched = ops.paged_attention_prefill

    def count(q, k, v, k_cache, v_cache, prefill, scale):
        seen.append(prefill.num_seqs)
        return batched(q, k, v, k_cache, v_cache, prefill, scale)

    monkeypatch.setattr(ops, "paged_attention_prefill", count)


def generate(path, prompts, use_op, **engine_args):
    llm = LLM(str(path), dtype="float32", block_size=4, **engine_args)
    use_op()
    shared = llm.generate(prompts[:1], greedy())  # fills the prefix cache for the later prompts
    return [list(o.token_ids) for o in shared + llm.generate(prompts[1:], greedy())]


@pytest.mark.parametrize("arch,budget", [("llama3-odd-heads-tied", 9), ("qwen2-bias-tied", 2048)])
def test_batched_prefill_matches_one_sequence_at_a_time(tiny_model_factory, monkeypatch, arch, budget):
    path = tiny_model_factory(**ARCH_SPECS[arch])
    prompts = [PROMPTS[4]] + [PROMPTS[4] + tail for tail in (" next", " token")] + PROMPTS[:4]
    calls = []
    batched = generate(path, prompts, lambda: counting(monkeypatch, calls), max_num_batched_tokens=budget)
    assert max(calls) >= 2, "some step prefilled several chunks in one call"
    reference = generate(path, prompts, lambda: monkeypatch.setattr(ops, "paged_attention_prefill", per_sequence),
                         max_num_batched_tokens=budget)
    assert reference == batched


def test_one_attention_call_per_layer_serves_all_chunks(tiny_model_factory, monkeypatch):
    path = tiny_model_factory(**ARCH_SPECS["mistral"])
    llm = LLM(str(path), dtype="float32", enable_prefix_caching=False)
    calls = []
    counting(monkeypatch, calls)
    llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=1))
    assert calls == [len(PROMPTS)] * llm.engine.runner.model.config.num_layers  # one step, one call a layer
