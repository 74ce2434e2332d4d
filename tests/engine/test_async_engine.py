"""AsyncEngine: the server contract, bad input isolation, abort, shutdown."""
from __future__ import annotations

import asyncio

import pytest

from halyard_worker.engine.types import InvalidParameter, SamplingParams


@pytest.fixture(scope="module")
def engine(tiny_model):
    from halyard_worker.engine.async_engine import AsyncEngine

    eng = AsyncEngine(model=str(tiny_model), dtype="float32", max_model_len=128)
    eng.start()
    yield eng
    eng.shutdown()


async def collect(engine, rid, prompt, params, priority=0):
    return [o async for o in engine.generate(rid, prompt, params, priority)]


async def test_snapshots_are_cumulative_with_deltas(engine):
    outs = await collect(engine, "snap", "The quick brown fox", SamplingParams(temperature=0, max_tokens=8, min_tokens=8))
    final = outs[-1]
    assert final.finished and final.finish_reason == "length" and len(final.token_ids) == 8
    assert "".join(o.new_text for o in outs) == final.text
    assert sum((o.new_token_ids for o in outs), ()) == final.token_ids
    assert final.prompt_token_ids == tuple(engine.tokenizer.encode("The quick brown fox"))
    assert all(not o.finished for o in outs[:-1])


async def test_bad_requests_fail_alone_while_others_are_served(engine):
    good = asyncio.create_task(collect(engine, "good", "Hello world", SamplingParams(temperature=0, max_tokens=10)))
    with pytest.raises(InvalidParameter) as err:
        await collect(engine, "long", list(range(10, 10 + 200)), SamplingParams())
    assert err.value.param == "prompt" and "200" in str(err.value) and "127" in str(err.value)
    with pytest.raises(InvalidParameter) as err:
        await collect(engine, "empty", "", SamplingParams())
    assert err.value.param == "prompt"
    with pytest.raises(InvalidParameter) as err:
        await collect(engine, "bad-id", [5, 100000], SamplingParams())
    assert err.value.param == "prompt"
    with pytest.raises(InvalidParameter) as err:
        SamplingParams(temperature=-1)
    assert err.value.param == "temperature"
    outs = await good
    assert outs[-1].finished and outs[-1].finish_reason in ("length", "stop")


async def test_abort_ends_the_stream_and_frees_blocks(engine):
    params = SamplingParams(temperature=0, max_tokens=100, ignore_eos=True)
    seen = []

    async def consume():
        async for out in engine.generate("to-abort", "Kubernetes schedules pods", params):
            seen.append(out)
            if len(seen) == 3:
                engine.abort("to-abort")

    await asyncio.wait_for(consume(), 30)
    assert seen[-1].finished and seen[-1].finish_reason == "abort"
    assert len(seen[-1].token_ids) < 100
    await asyncio.sleep(0.05)
    stats = engine.stats()
    assert stats.num_running == 0 and stats.kv_cache_usage == 0.0


async def test_consumer_leaving_early_aborts_the_request(engine):
    params = SamplingParams(temperature=0, max_tokens=100, ignore_eos=True)
    gen = engine.generate("leaver", "Hello world", params)
    async for _ in gen:
        break
    await gen.aclose()
    for _ in range(100):
        if engine.stats().num_running == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.stats().num_running == 0 and engine.stats().kv_cache_usage == 0.0


async def test_stats_count_prefix_cache_in_tokens(engine):
    prompt = "Paged attention stores keys and values in fixed-size blocks. " * 3
    before = engine.stats()
    await collect(engine, "p1", prompt, SamplingParams(temperature=0, max_tokens=2))
    outs = await collect(engine, "p2", prompt, SamplingParams(temperature=0, max_tokens=2))
    after = engine.stats()
    n = len(engine.tokenizer.encode(prompt))
    assert after.prefix_cache_queries_total - before.prefix_cache_queries_total == 2 * n
    assert after.prefix_cache_hits_total - before.prefix_cache_hits_total == outs[-1].num_cached_tokens
    assert outs[-1].num_cached_tokens >= 16
    assert after.kv_capacity_tokens > 0


async def test_logprobs_and_stop_string_in_stream(engine):
    outs = await collect(engine, "lp", "Hello world", SamplingParams(temperature=0, max_tokens=5, logprobs=3))
    final = outs[-1]
    assert len(final.logprobs) == len(final.token_ids)
    for tok, entry in zip(final.token_ids, final.logprobs):
        assert entry.sampled.token_id == tok and len(entry.top) == 3
        assert entry.top[0].token_id == tok  # greedy picks the most likely token
    text = final.text
    if len(text) > 2:
        stop = text[1:3]
        outs = await collect(engine, "stop", "Hello world", SamplingParams(temperature=0, max_tokens=5, stop=stop))
        assert outs[-1].finish_reason == "stop" and outs[-1].text == text[:1]
        assert outs[-1].stop_reason == stop


async def test_duplicate_request_id_is_rejected(engine):
    params = SamplingParams(temperature=0, max_tokens=30, ignore_eos=True)
    first = asyncio.create_task(collect(engine, "dup", "Hello", params))
    await asyncio.sleep(0.01)
    with pytest.raises(InvalidParameter) as err:
        await collect(engine, "dup", "Hello", params)
    assert err.value.param == "request_id"
    assert (await first)[-1].finished


async def test_shutdown_aborts_in_flight_requests(tiny_model):
    from halyard_worker.engine.async_engine import AsyncEngine

    eng = AsyncEngine(model=str(tiny_model), dtype="float32", max_model_len=128)
    params = SamplingParams(temperature=0, max_tokens=120, ignore_eos=True)
    task = asyncio.create_task(collect(eng, "long-running", "Hello", params))
    for _ in range(200):
        if eng.stats().num_running:
            break
        await asyncio.sleep(0.01)
    await asyncio.to_thread(eng.shutdown)
    outs = await asyncio.wait_for(task, 10)
    assert outs[-1].finish_reason == "abort"


async def test_urgent_request_preempts_a_running_batch_request(tiny_model):
    from halyard_worker.engine.async_engine import AsyncEngine

    eng = AsyncEngine(model=str(tiny_model), dtype="float32", max_num_seqs=1, max_model_len=256)
    finished_order = []

    async def run(rid, priority, n):
        params = SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)
        outs = [o async for o in eng.generate(rid, "Hello world", params, priority)]
        finished_order.append(rid)
        return outs[-1]

    try:
        batch = asyncio.create_task(run("batch", 5, 150))
        for _ in range(500):
            if eng.stats().num_running:
                break
            await asyncio.sleep(0.01)
        urgent = await run("urgent", 0, 3)
        batch_out = await batch
    finally:
        await asyncio.to_thread(eng.shutdown)
    assert finished_order == ["urgent", "batch"]
    assert eng.stats().num_preemptions_total >= 1
    assert len(urgent.token_ids) == 3 and len(batch_out.token_ids) == 150
