"""The router over real sockets in front of scripted workers."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from halyard_router.app import BACKENDS
from halyard_router.backends import Backend

SYSTEM = "You are the assistant of group {0}. Answer briefly and politely. " * 30


def completion(prompt="hello", **kw):
    return {"model": "m", "prompt": prompt, "max_tokens": 4, **kw}


async def get(url):
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def post(url, body, headers=None, timeout=10.0):
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.post(f"{url}/v1/completions", json=body, headers=headers)


async def test_streams_pass_through_chunk_by_chunk_to_the_openai_client(workers, router):
    openai = pytest.importorskip("openai")
    worker = await workers("w1", chunks=5, delay=0.02)
    url, _ = await router(backends=(worker.url,))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    stream = await client.completions.create(model="m", prompt="hi", max_tokens=5, stream=True)
    texts = [chunk.choices[0].text async for chunk in stream]
    assert texts == ["t0 ", "t1 ", "t2 ", "t3 ", "t4 "]
    raw = await client.completions.with_raw_response.create(model="m", prompt="hi", max_tokens=5)
    assert raw.parse().choices[0].text == "w1 answers"
    assert 0 <= float(raw.headers["X-Halyard-Router-Ms"]) < 1000  # time spent inside the router


async def test_shared_prefixes_stick_to_one_backend_and_round_robin_spreads(workers, router):
    pool = [await workers(f"w{i}") for i in range(3)]
    urls = tuple(w.url for w in pool)
    prefix_url, _ = await router(backends=urls)
    rr_url, _ = await router(backends=urls, policy="round-robin")
    for q in range(6):
        await post(prefix_url, {"model": "m", "messages": [{"role": "system", "content": SYSTEM.format(1)},
                                                           {"role": "user", "content": f"question {q}"}]})
    assert sorted(len(w.bodies) for w in pool) == [0, 0, 6]
    for q in range(6):
        await post(rr_url, completion(SYSTEM.format(1) + f"q{q}"))
    assert sorted(len(w.bodies) for w in pool) == [2, 2, 8]


async def test_draining_or_refusing_backends_are_retried_elsewhere(workers, router):
    draining = await workers("drain", mode="draining")
    dying = await workers("dying", mode="die_before")
    good = await workers("good")
    url, app = await router(backends=(draining.url, dying.url, good.url), policy="round-robin",
                            metrics_interval=60)
    for i in range(6):
        answer = await post(url, completion(f"p{i}"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Halyard-Backend"] == good.url
    benched = app[BACKENDS].benched
    assert draining.url in benched and dying.url in benched
    streamed = await post(url, completion(stream=True))
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text


async def test_a_stream_whose_backend_dies_ends_with_an_error_event(workers, router):
    worker = await workers("w", mode="die_mid")
    url, _ = await router(backends=(worker.url,))
    answer = await post(url, completion(stream=True))
    events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["text"] == "t0 "
    assert json.loads(events[-1])["error"]["code"] == "backend_lost"


async def test_requests_are_held_until_a_backend_appears(workers, router):
    url, app = await router(backends=(), hold_timeout=10)
    pending = asyncio.create_task(post(url, completion()))
    await asyncio.sleep(0.3)
    assert not pending.done()
    metrics = (await get(f"{url}/metrics")).text
    assert "halyard:router_requests_held 1.0" in metrics
    worker = await workers("late")
    app[BACKENDS].replace([Backend("late", worker.url)])
    answer = await asyncio.wait_for(pending, 5)
    assert answer.status_code == 200 and answer.json()["choices"][0]["text"] == "late answers"


async def test_hold_is_bounded_in_time_and_count(router):
    url, _ = await router(backends=(), hold_timeout=0.3, hold_max=1)
    first = asyncio.create_task(post(url, completion()))
    await asyncio.sleep(0.1)
    full = await post(url, completion())
    assert full.status_code == 503 and "--hold-max" in full.json()["error"]["message"]
    assert full.headers["Retry-After"]
    expired = await first
    assert expired.status_code == 503 and "within 0.3s" in expired.json()["error"]["message"]


async def test_batch_requests_are_shed_first_when_every_backend_is_saturated(workers, router):
    busy = [await workers(f"w{i}", running=4) for i in range(2)]
    url, app = await router(backends=tuple(w.url for w in busy), tier="critical", saturation=4,
                            queue_wait_batch=0.2)
    await asyncio.sleep(0.2)  # first scrapes
    shed = await post(url, completion(), headers={"X-Halyard-Tier": "batch"})
    assert shed.status_code == 429 and "batch-tier" in shed.json()["error"]["message"]
    assert "--queue-wait-batch" in shed.json()["error"]["message"] and shed.headers["Retry-After"]
    served = await post(url, completion())
    assert served.status_code == 200
    assert [b["priority"] for w in busy for b in w.bodies] == [0]
    bad = await post(url, completion(), headers={"X-Halyard-Tier": "gold"})
    assert bad.status_code == 400 and "X-Halyard-Tier" in bad.json()["error"]["message"]
    metrics = (await get(f"{url}/metrics")).text
    assert 'halyard:router_shed_total{reason="timeout",tier="batch"} 1.0' in metrics


async def test_requests_past_the_headroom_wait_for_a_slot_instead_of_failing(workers, router):
    worker = await workers("w", delay=0.4)
    # saturation 2: standard requests may have 3 in flight on the only backend
    url, _ = await router(backends=(worker.url,), saturation=2)
    answers = await asyncio.gather(*(post(url, completion(f"r{i}")) for i in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert len(worker.bodies) == 5


async def test_without_a_queue_wait_the_same_load_is_shed(workers, router):
    worker = await workers("w", delay=0.4)
    url, _ = await router(backends=(worker.url,), saturation=2, queue_wait_standard=0, queue_wait_batch=0)
    answers = await asyncio.gather(*(post(url, completion(f"r{i}")) for i in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 429, 429]


async def test_response_cache_replays_deterministic_answers(workers, router):
    worker = await workers("w")
    url, _ = await router(backends=(worker.url,), cache_entries=16)
    for _ in range(2):
        assert (await post(url, completion(temperature=0))).status_code == 200
        assert (await post(url, completion(temperature=0, stream=True))).status_code == 200
        await post(url, completion(temperature=0.7))
    assert len(worker.bodies) == 4  # two cached answers replayed, two sampled requests forwarded
    again = await post(url, completion(temperature=0, stream=True))
    assert again.headers["X-Halyard-Cache"] == "hit" and again.text.endswith("data: [DONE]\n\n")
    metrics = (await get(f"{url}/metrics")).text
    assert 'halyard:router_cache_total{result="hit"} 3.0' in metrics


async def test_models_health_ready(workers, router):
    url, _ = await router(backends=(), served_model="chat")
    assert (await get(f"{url}/v1/models")).json()["data"][0]["id"] == "chat"
    assert (await get(f"{url}/health")).status_code == 200
    assert (await get(f"{url}/ready")).json() == {"status": "ready", "backends": 0}
    worker = await workers("w")
    proxied, _ = await router(backends=(worker.url,))
    assert (await get(f"{proxied}/v1/models")).json()["data"][0]["id"] == "m"
