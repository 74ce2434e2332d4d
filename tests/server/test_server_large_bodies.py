"""Large request bodies are parsed, validated and tokenized without holding
the event loop, and answer exactly as small ones do (issue item: /health
answers while large prompts are tokenized)."""
from __future__ import annotations

import argparse
import asyncio
import json
import threading

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server_helpers import MODEL

PAD = "x" * 200_000  # a field that makes the body large without changing its errors


@pytest.fixture(scope="module")
def app(tiny_model):
    from halyard_worker.server.app import build_app
    from halyard_worker.server.config import add_serve_arguments, config_from_args
    from halyard_worker.server.runtime import build_runtime
    from halyard_worker.server.state import AppState

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    config = config_from_args(parser.parse_args(
        ["--model", str(tiny_model), "--served-model-name", MODEL, "--device", "cpu", "--kernels", "torch"]))
    runtime = build_runtime(config)
    yield build_app(AppState(config, runtime.max_model_len, runtime)), runtime
    runtime.engine.shutdown()


def _post(app, path: str, raw: str | bytes):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            return await http.post(path, content=raw, headers={"content-type": "application/json"})
    return asyncio.run(go())


@pytest.fixture
def parse_threads(monkeypatch):
    """Names of the threads that parsed a body on the large-body path."""
    from halyard_worker.server import body

    seen, real = [], body.parse_body

    def spy(adapter, raw):
        seen.append(threading.current_thread().name)
        return real(adapter, raw)

    monkeypatch.setattr(body, "parse_body", spy)
    return seen


BAD = [
    ("/v1/completions", '{"model": "tiny", "prompt": "p", "seed": -1, "user": "PAD"}'),
    ("/v1/completions", '{"model": "tiny", "prompt": ["ok", 5, {}], "user": "PAD"}'),
    ("/v1/completions", '{"model": "tiny", "prompt": "a\\ud800b", "user": "PAD"}'),
    ("/v1/completions", '{"prompt": "p", "user": "PAD"}'),
    ("/v1/completions", '{"model": "tiny", "prompt": "p", "user": "PAD" '),
    ("/v1/completions", '["tiny", "PAD"]'),
    ("/v1/chat/completions", '{"model": "tiny", "messages": [{"role": "bot", "content": "hi"}], "user": "PAD"}'),
    ("/v1/chat/completions", '{"model": "tiny", "messages": [], "tools": [{}], "user": "PAD"}'),
    ("/tokenize", '{"prompt": 5, "model": "PAD"}'),
]


# bodies that are not JSON text in UTF-8: json.loads decides them (FastAPI's parser)
BAD_BYTES = [
    b'{"model": "tiny", "prompt": "\xff", "user": "PAD"}',  # not UTF-8
    b'{"model": "tiny", "user": "PAD", "prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # nested too deep
    '{"model": "tiny", "prompt": "p", "seed": -1, "user": "PAD"}'.encode("utf-16"),  # UTF-16 (valid JSON)
    b'\xef\xbb\xbf{"model": "tiny", "prompt": "p", "seed": -1, "user": "PAD"}',  # UTF-8 with a BOM
    b'{"model": "tiny", "prompt": "p", "seed": NaN, "user": "PAD"}',
]


def _pad(raw: str | bytes, pad: str) -> str | bytes:
    if isinstance(raw, str):
        return raw.replace("PAD", pad)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16").replace("PAD", pad).encode("utf-16")
    return raw.replace(b"PAD", pad.encode())


@pytest.mark.parametrize("path,raw", BAD + [("/v1/completions", raw) for raw in BAD_BYTES])
def test_a_large_bad_body_gets_the_same_400_as_a_small_one(app, parse_threads, path, raw):
    small = _post(app[0], path, _pad(raw, "x"))
    assert not parse_threads  # small bodies take FastAPI's own path
    large = _post(app[0], path, _pad(raw, PAD))
    assert parse_threads and all(name.startswith("halyard-body") for name in parse_threads)
    assert small.status_code == large.status_code == 400
    assert small.json() == large.json()


def _outcome(parse, raw: bytes):
    try:
        value = parse(raw)
    except Exception as err:
        return "error", type(err), str(err)
    return "value", repr(value)  # repr: 1 and 1.0 differ, nan equals nan


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)
_documents = st.builds(
    lambda value, ascii, errors: json.dumps(value, ensure_ascii=ascii).encode("utf-8", errors),
    _values, st.booleans(), st.sampled_from(["surrogatepass", "replace"]))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_documents, st.binary(max_size=40), st.text(max_size=40).map(str.encode)))
def test_the_large_body_parser_reads_every_body_as_json_loads_does(raw):
    from halyard_worker.server.body import loads

    assert _outcome(loads, raw) == _outcome(json.loads, raw)


def test_a_large_valid_body_is_served(app, parse_threads):
    resp = _post(app[0], "/v1/completions", json.dumps(
        {"model": MODEL, "prompt": "hello", "max_tokens": 2, "user": PAD}))
    assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 2
    assert parse_threads


def test_an_overlong_prompt_is_refused_with_its_exact_token_count(app):
    from halyard_worker.server.tokens import DIRECT_CHARS

    _, runtime = app
    prompt = "lorem ipsum dolor sit amet " * (DIRECT_CHARS // 10)
    count = len(runtime.tokenizer.encode(prompt))
    resp = _post(app[0], "/v1/completions", json.dumps({"model": MODEL, "prompt": prompt, "max_tokens": 1}))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert f"has {count} tokens" in error["message"]


@pytest.mark.parametrize("add_special", [True, False])
def test_long_prompts_tokenize_as_the_tokenizer_does(app, add_special):
    from halyard_worker.server.tokens import DIRECT_CHARS, OverlongPrompt, encode_prompt

    tokenizer = app[1].tokenizer
    text = ("Hello <s> wörld, 漢字 and\n\ttabs " + tokenizer.decode([5, 6, 7])) * (DIRECT_CHARS // 20)
    want = list(tokenizer.encode(text, add_special_tokens=add_special))
    assert encode_prompt(tokenizer, text, add_special, len(want) + 1) == want
    assert encode_prompt(tokenizer, text, add_special, len(want)) == OverlongPrompt(len(want))
    assert len(encode_prompt(tokenizer, text, add_special, len(want))) == len(want)
