"""Bad requests get OpenAI error bodies naming the parameter; the server survives."""
from __future__ import annotations

import httpx
import pytest

from server_helpers import MODEL

pytestmark = pytest.mark.slow
KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(server_factory):
    return server_factory("--api-key", KEY, "--max-model-len", "64")


def post(server, path, body=None, headers=AUTH, content=None):
    kwargs = {"content": content, "headers": {**headers, "content-type": "application/json"}} \
        if content is not None else {"json": body, "headers": headers}
    return httpx.post(f"{server.url}{path}", timeout=30, **kwargs)


def completion(**overrides):
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 2}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


BAD_COMPLETIONS = [
    ("wrong_type_max_tokens", completion(max_tokens="many"), "max_tokens"),
    ("negative_max_tokens", completion(max_tokens=-1), "max_tokens"),
    ("zero_max_tokens", completion(max_tokens=0), "max_tokens"),
    ("oversized_max_tokens", completion(max_tokens=10_000), "max_tokens"),
    ("temperature_too_high", completion(temperature=5), "temperature"),
    ("temperature_negative", completion(temperature=-0.5), "temperature"),
    ("top_p_zero", completion(top_p=0), "top_p"),
    ("top_p_above_one", completion(top_p=1.5), "top_p"),
    ("top_k_below_minus_one", completion(top_k=-5), "top_k"),
    ("logprobs_too_many", completion(logprobs=50), "logprobs"),
    ("logprobs_wrong_type", completion(logprobs="yes"), "logprobs"),
    ("empty_prompt", completion(prompt=""), "prompt"),
    ("empty_prompt_list", completion(prompt=[]), "prompt"),
    ("missing_prompt", completion(prompt=...), "prompt"),
    ("prompt_wrong_type", completion(prompt={"text": "hi"}), "prompt"),
    ("stop_wrong_type", completion(stop=5), "stop"),
    ("n_above_one", completion(n=2), "n"),
    ("presence_penalty_out_of_range", completion(presence_penalty=3), "presence_penalty"),
    ("token_id_outside_vocab", completion(prompt=[1, 2, 999999]), "prompt"),
    ("missing_model", completion(model=...), "model"),
    ("prompt_too_long", completion(prompt="hello world " * 200), "prompt"),
    ("min_tokens_above_max_tokens", completion(min_tokens=5, max_tokens=2), "min_tokens"),
]


@pytest.mark.parametrize("body,param", [c[1:] for c in BAD_COMPLETIONS],
                         ids=[c[0] for c in BAD_COMPLETIONS])
def test_bad_completion_is_400_naming_the_parameter(server, body, param):
    resp = post(server, "/v1/completions", body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"]


def test_prompt_too_long_message_has_the_numbers(server):
    resp = post(server, "/v1/completions", completion(prompt=list(range(10, 80))))
    message = resp.json()["error"]["message"]
    assert resp.status_code == 400 and "64" in message and "70" in message


def test_malformed_json_is_400_not_422(server):
    resp = post(server, "/v1/completions", content=b'{"model": "tiny", "prompt": ')
    assert resp.status_code == 400
    assert "JSON" in resp.json()["error"]["message"]


def test_bad_chat_requests(server):
    base = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    cases = [
        ({**base, "messages": []}, "messages"),
        ({**base, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({**base, "max_completion_tokens": -3}, "max_completion_tokens"),
        ({**base, "logprobs": True, "top_logprobs": 99}, "top_logprobs"),
    ]
    for body, param in cases:
        resp = post(server, "/v1/chat/completions", body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["param"] == param, resp.text


def test_unknown_model_is_404(server):
    resp = post(server, "/v1/completions", completion(model="gpt-9"))
    assert resp.status_code == 404
    assert resp.json()["error"]["param"] == "model"
    assert "gpt-9" in resp.json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_missing_or_wrong_api_key_is_401(server, headers):
    resp = post(server, "/v1/completions", completion(), headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{server.url}/v1/models", headers=headers).status_code == 401


def test_probes_and_metrics_need_no_key(server):
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(f"{server.url}{path}").status_code == 200


def test_openai_client_raises_typed_errors(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=MODEL, prompt="Hi", max_tokens=2, temperature=9)
    assert err.value.body["param"] == "temperature"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="other", prompt="Hi", max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0).models.list()


def test_server_still_healthy_and_serving_after_bad_requests(server):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    resp = post(server, "/v1/completions", completion())
    assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] >= 1
