"""One request's failure inside the engine fails that request alone.

The server runs in this process (uvicorn on a thread, the real engine on the
tiny model) so a test can let a poisoned SamplingParams past validation, as
a validation gap would: the seed overflows torch when its generator is built,
the top_k overflows inside the batched sampler. Every other stream finishes.
"""
from __future__ import annotations

import argparse
import asyncio
import threading
import time

import httpx
import pytest

from server_helpers import MODEL, free_port, metric, scrape

pytestmark = pytest.mark.slow

POISON_SEED, POISON_TOP_K = 424242, 434343


@pytest.fixture(scope="module")
def inproc(tiny_model):
    import uvicorn

    from halyard_worker.server.app import build_app
    from halyard_worker.server.config import add_serve_arguments, config_from_args
    from halyard_worker.server.runtime import build_runtime
    from halyard_worker.server.state import AppState

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    port = free_port()
    config = config_from_args(parser.parse_args(
        ["--model", str(tiny_model), "--served-model-name", MODEL, "--device", "cpu",
         "--host", "127.0.0.1", "--port", str(port), "--kernels", "torch"]))
    runtime = build_runtime(config)
    app = build_app(AppState(config, runtime.max_model_len, runtime))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(30)
    runtime.engine.shutdown()


@pytest.fixture
def poisoned_params(monkeypatch):
    """Requests with the marker seeds get parameters torch cannot take."""
    from halyard_worker.server import protocol

    real = protocol.make_params

    def make(kwargs):
        params = real(kwargs)
        if kwargs.get("seed") == POISON_SEED:
            object.__setattr__(params, "seed", 2**64)
        if kwargs.get("seed") == POISON_TOP_K:
            object.__setattr__(params, "top_k", 2**63)
        return params

    monkeypatch.setattr(protocol, "make_params", make)


def test_a_request_failing_in_the_engine_fails_alone(inproc, poisoned_params):
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(base_url=f"{inproc}/v1", api_key="unused", max_retries=0, timeout=120)
    before = scrape(inproc)

    async def good(i):
        stream = await client.completions.create(
            model=MODEL, prompt=f"stream {i}", max_tokens=48, stream=True, temperature=1.0, seed=i,
            extra_body={"ignore_eos": True})
        text, finish, tokens = "", None, 0
        async for chunk in stream:
            text += chunk.choices[0].text
            finish = chunk.choices[0].finish_reason or finish
        return finish

    async def bad(seed):
        await asyncio.sleep(0.05)  # while the good ones are decoding
        with pytest.raises(openai.InternalServerError) as err:
            await client.completions.create(model=MODEL, prompt="poison", max_tokens=8,
                                            temperature=1.0, seed=seed)
        return err.value

    async def main():
        return await asyncio.gather(*(good(i) for i in range(4)), bad(POISON_SEED), bad(POISON_TOP_K))

    *finishes, seed_err, top_k_err = asyncio.run(main())
    assert finishes == ["length"] * 4
    for err in (seed_err, top_k_err):
        body = err.response.json()["error"]
        assert body["code"] == "engine_error" and "request id" in body["message"]
        assert "Overflow" not in body["message"] and "RuntimeError" not in body["message"]
    after = scrape(inproc)
    assert metric(after, "halyard:engine_errors_total") - metric(before, "halyard:engine_errors_total") == 2
    assert (metric(after, "halyard:http_server_errors_total", status="500")
            - metric(before, "halyard:http_server_errors_total", status="500")) == 2
    ok = httpx.post(f"{inproc}/v1/completions", json={"model": MODEL, "prompt": "after", "max_tokens": 4,
                                                      "temperature": 1.0, "seed": 7}, timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["finish_reason"] == "length"
