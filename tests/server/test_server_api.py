"""The OpenAI-compatible API against a live worker (official openai client)."""
from __future__ import annotations

import json

import httpx
import pytest

from server_helpers import MODEL

pytestmark = pytest.mark.slow
FIXED = {"ignore_eos": True}


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_completion_from_string_reports_usage(client):
    out = client.completions.create(model=MODEL, prompt="The quick brown fox", max_tokens=5,
                                    temperature=0, extra_body=FIXED)
    assert len(out.choices) == 1
    assert out.choices[0].finish_reason == "length"
    assert isinstance(out.choices[0].text, str) and out.choices[0].text
    assert out.usage.completion_tokens == 5
    assert out.usage.prompt_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + 5


def test_completion_from_token_ids_matches_the_same_text(client, server):
    tokens = httpx.post(f"{server.url}/tokenize", json={"prompt": "Hello world"}).json()["tokens"]
    by_text = client.completions.create(model=MODEL, prompt="Hello world", max_tokens=4,
                                        temperature=0, extra_body=FIXED)
    by_ids = client.completions.create(model=MODEL, prompt=tokens, max_tokens=4,
                                       temperature=0, extra_body=FIXED)
    assert by_ids.usage.prompt_tokens == len(tokens)
    assert by_ids.choices[0].text == by_text.choices[0].text


def test_completion_list_of_prompts_returns_one_choice_each(client):
    prompts = ["Kubernetes schedules", "Paged attention", "Hello"]
    out = client.completions.create(model=MODEL, prompt=prompts, max_tokens=3,
                                    temperature=0, extra_body=FIXED)
    assert sorted(c.index for c in out.choices) == [0, 1, 2]
    assert out.usage.completion_tokens == 9
    single = client.completions.create(model=MODEL, prompt=prompts[1], max_tokens=3,
                                       temperature=0, extra_body=FIXED)
    assert out.choices[1].text == single.choices[0].text


def test_greedy_completion_is_deterministic_and_seeded_sampling_repeats(client):
    args = dict(model=MODEL, prompt="A language model", max_tokens=6, extra_body=FIXED)
    assert (client.completions.create(temperature=0, **args).choices[0].text
            == client.completions.create(temperature=0, **args).choices[0].text)
    a = client.completions.create(temperature=1.0, seed=7, **args).choices[0].text
    b = client.completions.create(temperature=1.0, seed=7, **args).choices[0].text
    assert a == b


def test_echo_prepends_the_prompt(client):
    out = client.completions.create(model=MODEL, prompt="Hello world", max_tokens=2, echo=True,
                                    temperature=0, extra_body=FIXED)
    assert out.choices[0].text.startswith("Hello world")


def test_completion_logprobs(client):
    out = client.completions.create(model=MODEL, prompt="Hello", max_tokens=3, logprobs=2,
                                    temperature=0, extra_body=FIXED)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == 3 and len(lp.token_logprobs) == 3
    assert all(v <= 0 for v in lp.token_logprobs)
    assert all(len(top) >= 1 for top in lp.top_logprobs)


def test_stop_token_ids_end_with_stop(client):
    every_token = list(range(384))  # the tiny model's whole vocabulary: the first token stops
    out = client.completions.create(model=MODEL, prompt="Hello world", max_tokens=8, temperature=0,
                                    extra_body={"stop_token_ids": every_token})
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.completion_tokens <= 1


def test_stop_string_cuts_the_text(client):
    free = client.completions.create(model=MODEL, prompt="Hello", max_tokens=8, temperature=0,
                                     extra_body=FIXED).choices[0].text
    stop = free[2:4] if len(free) >= 4 else free[-1]
    out = client.completions.create(model=MODEL, prompt="Hello", max_tokens=8, temperature=0,
                                    stop=[stop], extra_body=FIXED)
    assert out.choices[0].finish_reason == "stop"
    assert stop not in out.choices[0].text
    assert free.startswith(out.choices[0].text)


def test_chat_completion(client):
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello!"}],
        max_completion_tokens=4, temperature=0, extra_body=FIXED)
    choice = out.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "length"
    assert out.usage.completion_tokens == 4


def test_chat_stream_role_first_then_content_then_finish(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
        temperature=0, stream=True, stream_options={"include_usage": True}, extra_body=FIXED)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    full = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
        temperature=0, extra_body=FIXED)
    assert text == full.choices[0].message.content


def test_completion_stream_sse_framing_and_usage(server):
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 5, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    usage = payloads[-1]["usage"]
    assert payloads[-1]["choices"] == [] and usage["completion_tokens"] == 5
    assert payloads[-2]["choices"][0]["finish_reason"] == "length"


def test_stream_without_include_usage_has_no_usage(client):
    chunks = list(client.completions.create(model=MODEL, prompt="Hello", max_tokens=3,
                                            stream=True, extra_body=FIXED))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_request_id_header_is_echoed(server):
    body = {"model": MODEL, "prompt": "Hi", "max_tokens": 1}
    resp = httpx.post(f"{server.url}/v1/completions", json=body, headers={"X-Request-Id": "abc-1"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "abc-1"
    assert resp.json()["id"].startswith("cmpl-")  # the body id is the server's own


def test_tokenize_detokenize_round_trip(server):
    tokens = httpx.post(f"{server.url}/tokenize",
                        json={"prompt": "Paged attention", "add_special_tokens": False}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 0
    text = httpx.post(f"{server.url}/detokenize", json={"tokens": tokens["tokens"]}).json()["prompt"]
    assert text == "Paged attention"


def test_priority_field_is_accepted(client):
    out = client.completions.create(model=MODEL, prompt="Hi", max_tokens=2,
                                    extra_body={"priority": 5, **FIXED})
    assert out.usage.completion_tokens == 2


def test_stream_of_several_prompts_finishes_every_choice(client):
    chunks = list(client.completions.create(
        model=MODEL, prompt=["Hello", "Spot instances"], max_tokens=3, temperature=0, stream=True,
        stream_options={"include_usage": True}, extra_body=FIXED))
    finished = {c.choices[0].index: c.choices[0].finish_reason
                for c in chunks if c.choices and c.choices[0].finish_reason}
    assert finished == {0: "length", 1: "length"}
    assert chunks[-1].usage.completion_tokens == 6


def test_chat_logprobs(client):
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3, temperature=0,
        logprobs=True, top_logprobs=2, extra_body=FIXED)
    content = out.choices[0].logprobs.content
    assert len(content) == 3
    assert all(item.logprob <= 0 and len(item.top_logprobs) == 2 for item in content)


def test_concurrent_requests_with_the_same_request_id_both_succeed(server):
    import asyncio

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            body = {"model": MODEL, "prompt": "Hello", "max_tokens": 16, "ignore_eos": True}
            return await asyncio.gather(*(client.post("/v1/completions", json=body,
                                                      headers={"X-Request-Id": "same"})
                                          for _ in range(3)))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.headers["x-request-id"] == "same" for r in responses)
    assert len({r.json()["id"] for r in responses}) == 3
