"""`halyard-worker serve` on SmolLM2's GGUF file answers token for token what
transformers `generate` gives on the same file dequantized (float32, greedy)."""
from __future__ import annotations

import pytest
from openai import OpenAI

N = 64
CHAT_PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a GPU is in two sentences.",
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("prompt", CHAT_PROMPTS)
def test_served_gguf_greedy_matches_transformers(gguf_server, reference_tokenizer, hf_reference_greedy, prompt):
    messages = [{"role": "user", "content": prompt}]
    prompt_ids = list(reference_tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                              tokenize=True, return_dict=True)["input_ids"])
    expected = hf_reference_greedy(prompt_ids, N)

    client = OpenAI(base_url=f"{gguf_server}/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="smollm2", messages=messages, temperature=0, max_tokens=N, logprobs=True,
        extra_body={"min_tokens": N})
    choice = reply.choices[0]
    assert reply.usage.prompt_tokens == len(prompt_ids)  # the GGUF's own chat template, same ids
    assert [t.token for t in choice.logprobs.content] == [reference_tokenizer.decode([t]) for t in expected]
    assert choice.message.content == reference_tokenizer.decode(expected, skip_special_tokens=True)
    assert reply.usage.completion_tokens == N


def test_served_gguf_answers_the_question(gguf_server):
    client = OpenAI(base_url=f"{gguf_server}/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0, max_tokens=24)
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
