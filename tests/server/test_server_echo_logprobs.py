"""/v1/completions with echo and logprobs returns the prompt tokens' logprobs
first (as vLLM), so log-likelihood evaluators work against the server."""
from __future__ import annotations

import httpx

from server_helpers import MODEL

PROMPT = "Hello world! How are you today?"


def _complete(server, **body):
    r = httpx.post(f"{server.url}/v1/completions", timeout=60,
                   json={"model": MODEL, "prompt": PROMPT, "temperature": 0, **body})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def test_echo_with_logprobs_scores_every_prompt_token(server, tiny_model):
    ids = httpx.post(f"{server.url}/tokenize", json={"model": MODEL, "prompt": PROMPT}, timeout=30).json()["tokens"]
    choice = _complete(server, echo=True, logprobs=1, max_tokens=1)
    lp = choice["logprobs"]
    n = len(ids)
    assert len(lp["tokens"]) == n + 1 and len(lp["token_logprobs"]) == n + 1
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert all(v <= 0 for v in lp["token_logprobs"][1:])
    for token, value, top in zip(lp["tokens"][1:n], lp["token_logprobs"][1:n], lp["top_logprobs"][1:n]):
        assert top[token] == value  # the prompt token itself is always listed
    assert "".join(lp["tokens"][:n]) == PROMPT and choice["text"].startswith(PROMPT)
    assert lp["text_offset"][n] == len(PROMPT)

    # the values are the model's: transformers' full forward over the same ids
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
    expected = [ref[t - 1, ids[t]].item() for t in range(1, n)]
    assert max(abs(a - b) for a, b in zip(lp["token_logprobs"][1:n], expected)) < 1e-4


def test_echo_with_logprobs_streams_the_prompt_first(client):
    stream = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3, echo=True, logprobs=0,
                                       temperature=0, stream=True)
    chunks = [c.choices[0] for c in stream if c.choices]
    first = chunks[0].logprobs
    assert first.token_logprobs[0] is None and chunks[0].text.startswith(PROMPT)
    assert sum(len(c.logprobs.tokens) for c in chunks) > 3  # prompt tokens + 3 generated
