"""Issue-level hardening of `halyard-worker serve`: bad input never hurts
another request, and the server does what its contract says (real processes,
real HTTP, the official openai client)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from server_helpers import MODEL, free_port, metric, scrape

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(server_factory):
    return server_factory("--max-num-seqs", "32", "--max-request-bytes", "6Mi")


@pytest.fixture(scope="module")
def long_model(tiny_model_factory):
    """A context long enough that one request keeps decoding for seconds."""
    return tiny_model_factory(max_position_embeddings=4096)


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


def post(url, path, body=None, content=None, client=httpx):
    if content is not None:
        return client.post(f"{url}{path}", content=content, timeout=60,
                           headers={"content-type": "application/json"})
    return client.post(f"{url}{path}", json=body, timeout=60)


def error_of(resp):
    return resp.status_code, resp.json()["error"]["param"]


# -- 1. poisoned parameters are refused; every other stream finishes ----------
POISONED = [
    ({"seed": 2**64}, "seed"), ({"seed": -1}, "seed"), ({"top_k": 2**63}, "top_k"),
    ({"logprobs": 10**6}, "logprobs"), ({"stop": ["x" * 5000]}, "stop"),
    ({"stop": ["a"] * 100}, "stop"), ({"stop_token_ids": [2**70]}, "stop_token_ids[0]"),
    ({"repetition_penalty": 1e300}, "repetition_penalty"), ({"max_tokens": 2**70}, "max_tokens"),
    ({"min_tokens": 2**70}, "min_tokens"), ({"priority": 2**70}, "priority"),
    ({"logit_bias": {"99999999": 5}}, "logit_bias"), ({"logit_bias": {"1": 1e9}}, "logit_bias.1"),
    ({"logit_bias": {"x": 1}}, "logit_bias"),
]


def test_poisoned_requests_fail_alone_while_streams_finish(client, server):
    results = {}

    def stream(i):
        chunks = client.completions.create(model=MODEL, prompt=f"stream {i}", max_tokens=40, stream=True,
                                           extra_body={"ignore_eos": True})
        results[i] = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for fields, param in POISONED:
            resp = http.post("/v1/completions", json={"model": MODEL, "prompt": "p", "max_tokens": 4, **fields})
            assert error_of(resp) == (400, param), (fields, resp.text)
    for t in threads:
        t.join(120)
    assert results == {i: ["length"] for i in range(4)}


# -- 2. lone surrogates: 400 naming the field, connection kept ----------------
@pytest.mark.parametrize("path,raw,param", [
    ("/v1/completions", '{"model": "tiny", "prompt": "a\\ud800b", "max_tokens": 2}', "prompt"),
    ("/v1/completions", '{"model": "tiny", "prompt": ["ok", "a\\udfffb"], "max_tokens": 2}', "prompt[1]"),
    ("/v1/chat/completions", '{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800"}]}',
     "messages[0].content"),
    ("/v1/completions", '{"model": "t\\ud800", "prompt": "x"}', "model"),
    ("/tokenize", '{"prompt": "a\\ud800b"}', "prompt"),
])
def test_lone_surrogates_are_400_and_keep_the_connection(server, path, raw, param):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        resp = http.post(path, content=raw, headers={"content-type": "application/json"})
        assert error_of(resp) == (400, param)
        assert "surrogate" in resp.json()["error"]["message"]
        again = http.post("/tokenize", json={"prompt": "still here"})  # same keep-alive connection
        assert again.status_code == 200 and again.json()["count"] > 0


# -- 3. big bodies: 413 over the limit; probes answer while prompts tokenize ---
def test_body_over_the_limit_is_413(server):
    resp = post(server.url, "/v1/completions", content=json.dumps(
        {"model": MODEL, "prompt": "x" * (7 * 2**20)}))
    assert resp.status_code == 413
    assert "--max-request-bytes" in resp.json()["error"]["message"]
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_health_answers_while_large_prompts_are_tokenized(server):
    big = json.dumps({"model": MODEL, "prompt": "lorem ipsum dolor sit amet " * 190_000, "max_tokens": 1})
    finished = []

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
            async def big_request():
                resp = await http.post("/v1/completions", content=big,
                                       headers={"content-type": "application/json"})
                finished.append(("big", resp.status_code))

            async def probe():
                await asyncio.sleep(0.5)  # the bodies are in; tokenization has started
                resp = await http.get("/health")
                finished.append(("health", resp.status_code))

            await asyncio.gather(*(big_request() for _ in range(4)), probe())

    asyncio.run(main())
    # the probe, sent after the big requests, is answered before any of them
    assert finished[0] == ("health", 200), finished
    assert [s for name, s in finished if name == "big"] == [400] * 4  # too long for the context


# -- 4. client ids never collide with engine ids; drain aborts everything ------
def test_colliding_request_ids_still_drain_at_the_deadline(server_factory, long_model):
    from halyard_worker.server.drain import FLUSH_GRACE

    drain, max_tokens = 0.5, 4000
    srv = server_factory("--drain-timeout", str(drain), model=long_model)
    results, first = {}, threading.Barrier(4)

    def run(name, rid, prompt):
        body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}
        with httpx.stream("POST", f"{srv.url}/v1/completions", json=body, headers={"X-Request-Id": rid},
                          timeout=120) as resp:
            lines = resp.iter_lines()
            next(lines)
            first.wait(60)
            chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        results[name] = (resp, time.monotonic(), chunks[-1].get("usage"),
                         [c["choices"][0]["finish_reason"] for c in chunks
                          if c["choices"] and c["choices"][0]["finish_reason"]])

    threads = [threading.Thread(target=run, args=("a", "foo", ["one", "two"])),
               threading.Thread(target=run, args=("b", "foo/0", "three")),
               threading.Thread(target=run, args=("c", "foo-0", "four"))]
    for t in threads:
        t.start()
    first.wait(60)  # every stream has sent its first chunk
    signalled = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    assert srv.proc.wait(60) == 0
    assert "drain deadline passed: aborted 3 requests" in srv.output()
    for name, rid, n in (("a", "foo", 2), ("b", "foo/0", 1), ("c", "foo-0", 1)):
        assert name in results, f"stream {name} was cut before its final chunk"
        resp, ended, usage, reasons = results[name]
        assert resp.status_code == 200 and resp.headers["x-request-id"] == rid
        # every choice, the colliding ids' too, was cut short by the deadline
        assert reasons == ["drain"] * n and usage["completion_tokens"] < n * max_tokens
        # ...at the deadline: a choice the drain cannot abort holds it for the whole
        # flush grace (and then runs on, or is cut without a finish reason)
        assert ended - signalled < drain + FLUSH_GRACE


# -- 5/6. abandoned queued requests free their slot; impossible ones are 400 ---
@pytest.fixture(scope="module")
def small(server_factory, long_model):
    return server_factory("--max-num-seqs", "1", "--max-queue", "4", model=long_model)


def _abandon(url: str, body: dict) -> None:
    """Send a streaming request and hang up before any response byte."""
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        time.sleep(0.2)


def test_streams_abandoned_in_the_queue_free_their_slot_and_are_never_prefilled(small):
    before = metric(scrape(small.url), "vllm:prompt_tokens_total")
    holder = threading.Thread(target=lambda: httpx.post(f"{small.url}/v1/completions", timeout=120, json={
        "model": MODEL, "prompt": "hold", "max_tokens": 4000, "ignore_eos": True}))
    holder.start()
    time.sleep(0.3)
    long_prompt = " ".join(["abandoned"] * 60)
    for _ in range(4):
        _abandon(small.url, {"model": MODEL, "prompt": long_prompt, "max_tokens": 4, "stream": True})
    # the queue (4) is free again at once: four more are admitted, none gets 429
    with httpx.Client(base_url=small.url, timeout=120) as http:
        results = []
        threads = [threading.Thread(target=lambda: results.append(http.post("/v1/completions", json={
            "model": MODEL, "prompt": "next", "max_tokens": 1}).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        holder.join(120)
        assert results == [200] * 4
        hold_tokens = http.post("/tokenize", json={"prompt": "hold"}).json()["count"]
        next_tokens = http.post("/tokenize", json={"prompt": "next"}).json()["count"]
    prefilled = metric(scrape(small.url), "vllm:prompt_tokens_total") - before
    assert prefilled == hold_tokens + 4 * next_tokens  # the abandoned prompts never reached prefill


def test_more_prompts_than_running_plus_queue_is_400_naming_the_limit(small):
    for prompts in (["p"] * 6, ["p"] * 50_000):
        resp = post(small.url, "/v1/completions", {"model": MODEL, "prompt": prompts, "max_tokens": 1})
        assert error_of(resp) == (400, "prompt")
        assert "--max-num-seqs + --max-queue = 5" in resp.json()["error"]["message"]
    assert post(small.url, "/v1/completions", {"model": MODEL, "prompt": ["p"] * 5,
                                               "max_tokens": 1}).status_code == 200


# -- 7. OpenAI fields: logit_bias works; the unimplemented ones are refused ----
def test_logit_bias_steers_sampling(client, server):
    token = httpx.post(f"{server.url}/tokenize", json={"prompt": " world", "add_special_tokens": False},
                       timeout=30).json()["tokens"][0]
    piece = httpx.post(f"{server.url}/detokenize", json={"tokens": [token]}, timeout=30).json()["prompt"]
    kwargs = dict(model=MODEL, prompt="Hello", max_tokens=6, temperature=0, extra_body={"ignore_eos": True})
    unbiased = client.completions.create(**kwargs).choices[0].text
    favoured = client.completions.create(**kwargs, logit_bias={str(token): 100}).choices[0].text
    assert favoured == piece * 6 != unbiased
    first = httpx.post(f"{server.url}/tokenize", json={"prompt": unbiased, "add_special_tokens": False},
                       timeout=30).json()["tokens"][0]
    banned = client.completions.create(**kwargs, logit_bias={str(first): -100}).choices[0].text
    assert httpx.post(f"{server.url}/tokenize", json={"prompt": banned, "add_special_tokens": False},
                      timeout=30).json()["tokens"][0] != first


UNSUPPORTED = [
    ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ("/v1/chat/completions", {"tool_choice": "auto"}, "tool_choice"),
    ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
    ("/v1/chat/completions", {"response_format": {"type": "bogus"}}, "response_format.type"),
    ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("/v1/completions", {"best_of": 3}, "best_of"),
    ("/v1/completions", {"functions": [{"name": "f"}]}, "functions"),
]


@pytest.mark.parametrize("path,fields,param", UNSUPPORTED, ids=[u[2] for u in UNSUPPORTED])
def test_unimplemented_openai_fields_are_400_not_ignored(server, path, fields, param):
    base = ({"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else {"prompt": "hi"})
    resp = post(server.url, path, {"model": MODEL, "max_tokens": 2, **base, **fields})
    assert error_of(resp) == (400, param), resp.text


def test_response_format_text_is_the_default_and_accepted(client):
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                         max_tokens=2, response_format={"type": "text"})
    assert out.choices[0].finish_reason in ("stop", "length")


# -- 8. tiny temperatures are greedy ------------------------------------------
def test_tiny_temperature_is_greedy(client):
    def text(temperature):
        return client.completions.create(model=MODEL, prompt="Once upon", max_tokens=12,
                                         temperature=temperature, seed=1).choices[0].text
    assert text(1e-300) == text(0.0)


# -- 9. error `param` is the JSON path the client sent -------------------------
@pytest.mark.parametrize("path,body,param", [
    ("/v1/completions", {"model": MODEL, "prompt": "x", "stream": "yes"}, "stream"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "stream": True,
                         "stream_options": {"include_usage": "x"}}, "stream_options.include_usage"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "n": 0}, "n"),
    ("/v1/completions", {"model": MODEL, "prompt": [[1, 2], [3, -4]]}, "prompt[1][1]"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]},
     "messages[0].role"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                              "max_completion_tokens": 100_000}, "max_completion_tokens"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": 5}]}]}, "messages[0].content[0].text"),
])
def test_error_param_is_the_path_sent(server, path, body, param):
    assert error_of(post(server.url, path, body)) == (400, param)


def test_empty_or_non_object_bodies_say_so(server):
    for raw in ("", "[]", "3"):
        resp = post(server.url, "/v1/completions", content=raw)
        assert resp.status_code == 400, raw
        assert "body" in resp.json()["error"]["message"] and resp.json()["error"]["param"] is None


# -- 10. the OpenAPI document is true; 405 keeps Allow -------------------------
def test_openapi_documents_the_real_responses(server):
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    completions = doc["paths"]["/v1/completions"]["post"]["responses"]
    assert "422" not in completions
    assert {"200", "400", "404", "413", "429", "500", "503"} <= set(completions)
    assert "text/event-stream" in completions["200"]["content"]
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    resp = httpx.get(f"{server.url}/v1/completions", timeout=10)
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"


# -- 11. SIGTERM while the model loads exits promptly --------------------------
def test_sigterm_during_model_load_exits_promptly(tiny_model, tmp_path):
    model = tmp_path / "slow-model"
    model.mkdir()
    for item in tiny_model.iterdir():
        if item.suffix != ".safetensors":
            (model / item.name).symlink_to(item)
    os.mkfifo(model / "model.safetensors")  # opening it blocks: the load never finishes
    port = free_port()
    log = open(tmp_path / "log.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(model),
                             "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.json().get("reason") == "model is loading":
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        time.sleep(1.0)  # well inside the load
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()


# -- 12. no path in /v1/models; the API key from a file or the environment -----
def test_models_does_not_reveal_the_model_path(server, tiny_model):
    body = httpx.get(f"{server.url}/v1/models", timeout=10).text
    assert str(tiny_model) not in body and tiny_model.name not in body


@pytest.mark.parametrize("source", ["env", "file"])
def test_api_key_from_the_environment_or_a_file(server_factory, tmp_path, monkeypatch, source):
    key = "sk-from-" + source
    flags = ()
    if source == "file":
        (tmp_path / "key").write_text(key + "\n")
        flags = ("--api-key-file", str(tmp_path / "key"))
    else:
        monkeypatch.setenv("HALYARD_API_KEY", key)
    srv = server_factory(*flags)
    try:
        body = {"model": MODEL, "prompt": "x", "max_tokens": 1}
        assert httpx.post(f"{srv.url}/v1/completions", json=body, timeout=30).status_code == 401
        ok = httpx.post(f"{srv.url}/v1/completions", json=body, timeout=30,
                        headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        assert key not in " ".join(srv.proc.args)  # never on the command line
    finally:
        srv.stop()
