"""Concurrency, client disconnects and the admission limit on a live worker."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from server_helpers import MODEL, metric, scrape

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_32_concurrent_streams_all_complete_with_exact_counts(server):
    openai = pytest.importorskip("openai")

    async def one(client, i):
        stream = await client.completions.create(
            model=MODEL, prompt=f"Request {i}: the quick brown fox", max_tokens=6, temperature=0,
            stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        chunks = [chunk async for chunk in stream]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        return chunks[-1].usage.completion_tokens, finish

    async def main():
        async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0,
                                      timeout=300) as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))

    results = asyncio.run(main())
    assert [r[0] for r in results] == [6] * 32
    assert all(r[1] == ["length"] for r in results)


def _running(url):
    s = scrape(url)
    return metric(s, "vllm:num_requests_running"), metric(s, "vllm:kv_cache_usage_perc")


def test_stream_disconnect_aborts_and_frees_kv_blocks(server):
    before = scrape(server.url)
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 480, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as resp:
        lines = resp.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: {") for line in got)
        running, kv = _running(server.url)
        assert running == 1 and kv > 0  # the request holds KV blocks while it streams
    # leaving the block closed the connection mid-stream
    assert _wait_for(lambda: _running(server.url) == (0, 0)), _running(server.url)
    after = scrape(server.url)
    aborted = metric(after, "vllm:request_success_total", finished_reason="abort") \
        - metric(before, "vllm:request_success_total", finished_reason="abort")
    generated = metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total")
    assert aborted == 1
    assert generated < 480


def test_non_streaming_disconnect_aborts_too(server):
    before = scrape(server.url)
    body = json.dumps({"model": MODEL, "prompt": "Hello", "max_tokens": 480, "ignore_eos": True})
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    assert _wait_for(lambda: _running(server.url)[0] == 1, timeout=30)
    sock.close()  # the client gives up while its request is running
    assert _wait_for(lambda: _running(server.url) == (0, 0))
    after = scrape(server.url)
    assert metric(after, "vllm:request_success_total", finished_reason="abort") == \
        metric(before, "vllm:request_success_total", finished_reason="abort") + 1
    assert metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total") < 480


def test_burst_beyond_the_admission_queue_gets_429(server_factory):
    small = server_factory("--max-num-seqs", "2", "--max-queue", "2")

    async def burst():
        async with httpx.AsyncClient(base_url=small.url, timeout=120) as client:
            body = {"model": MODEL, "prompt": "Hello", "max_tokens": 24, "ignore_eos": True}
            return await asyncio.gather(*(client.post("/v1/completions", json=body) for _ in range(12)))

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(200) >= 4 and codes.count(429) >= 1, codes
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert "--max-queue" in limited.json()["error"]["message"]
    assert limited.headers.get("retry-after")
    s = scrape(small.url)
    assert metric(s, "halyard:requests_rejected_total", reason="queue_full") == codes.count(429)
    # once the burst is over the server takes requests again
    ok = httpx.post(f"{small.url}/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 2})
    assert ok.status_code == 200
