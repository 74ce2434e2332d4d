"""Offline LLM API behaviour on a tiny model: stops, seeds, prompts as ids."""
from __future__ import annotations

import pytest

from halyard_worker import LLM, RequestOutput, SamplingParams


@pytest.fixture(scope="module")
def llm(tiny_model):
    return LLM(str(tiny_model), dtype="float32", seed=0)


def test_token_id_prompts_equal_string_prompts(llm):
    params = SamplingParams(temperature=0, max_tokens=6, min_tokens=6)
    ids = llm.tokenizer.encode("Hello world")
    [a, b] = llm.generate(["Hello world", ids], params)
    assert isinstance(a, RequestOutput)
    assert a.token_ids == b.token_ids and a.text == b.text
    assert a.prompt == "Hello world" and b.prompt is None


def test_stop_token_id_finishes_with_stop(llm):
    greedy = SamplingParams(temperature=0, max_tokens=8, min_tokens=8)
    [ref] = llm.generate("The quick brown", greedy)
    target = ref.token_ids[3]
    first = ref.token_ids.index(target)
    [out] = llm.generate("The quick brown", SamplingParams(temperature=0, max_tokens=8, stop_token_ids=[target]))
    assert out.finish_reason == "stop" and out.stop_reason == target
    assert out.token_ids == ref.token_ids[:first + 1]


def test_seeded_sampling_is_reproducible_across_batches(llm):
    seeded = SamplingParams(temperature=1.0, top_p=0.9, seed=42, max_tokens=10, min_tokens=10)
    [alone] = llm.generate("Hello world", seeded)
    batch = llm.generate(["Spot instances", "Hello world", "The quick"],
                         [SamplingParams(temperature=0.7, max_tokens=10), seeded,
                          SamplingParams(temperature=0, max_tokens=4)])
    assert batch[1].token_ids == alone.token_ids
    [other] = llm.generate("Hello world", SamplingParams(temperature=1.0, top_p=0.9, seed=43,
                                                         max_tokens=10, min_tokens=10))
    assert other.token_ids != alone.token_ids


def test_max_tokens_and_min_tokens(llm):
    [out] = llm.generate("Hello", SamplingParams(temperature=0, max_tokens=3, ignore_eos=True))
    assert len(out.token_ids) == 3 and out.finish_reason == "length"


def test_priority_list_is_accepted_and_all_finish(llm):
    outs = llm.generate(["a b c", "Hello", "The"], SamplingParams(temperature=0, max_tokens=3, min_tokens=3),
                        priority=[2, 0, 1])
    assert [len(o.token_ids) for o in outs] == [3, 3, 3]


def test_one_bad_prompt_rejects_the_call_without_leaking_requests(llm):
    from halyard_worker.engine.types import InvalidParameter

    with pytest.raises(InvalidParameter) as err:
        llm.generate(["Hello", ""], SamplingParams(max_tokens=2))
    assert err.value.param == "prompt"
    assert not llm.engine.has_unfinished()
    [out] = llm.generate("Hello", SamplingParams(temperature=0, max_tokens=2, min_tokens=2))
    assert len(out.token_ids) == 2
