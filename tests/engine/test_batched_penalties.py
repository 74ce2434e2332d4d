"""Penalties are one batched op over the step's rows; they equal the per-row
definition, and in the engine each request is penalized by its own tokens."""
from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from halyard_worker import LLM, SamplingParams  # noqa: E402
from halyard_worker.engine.sampler import SamplingRow, apply_penalties, table_of  # noqa: E402


def per_row_reference(logits, rows):
    """The definition, one row at a time: repetition over prompt + output ids
    (transformers), presence and frequency over output ids (OpenAI)."""
    out = logits.clone()
    for i, r in enumerate(rows):
        p = r.params
        seen = sorted(set(r.prompt_ids) | set(r.output_ids))
        if p.repetition_penalty != 1.0 and seen:
            vals = out[i, seen]
            out[i, seen] = torch.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
        if r.output_ids:
            counts = torch.bincount(torch.tensor(r.output_ids), minlength=out.shape[1]).to(out.dtype)
            out[i] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(out.dtype)
    return out


def random_rows(rng, n, vocab):
    choices = [dict(), dict(repetition_penalty=1.7), dict(repetition_penalty=0.6),
               dict(presence_penalty=0.8), dict(frequency_penalty=-0.4),
               dict(repetition_penalty=1.3, presence_penalty=-1.5, frequency_penalty=0.7)]
    rows = []
    for _ in range(n):
        prompt = [rng.randrange(vocab) for _ in range(rng.randrange(1, 30))]
        output = [rng.randrange(vocab // 4) for _ in range(rng.randrange(0, 40))]  # repeats
        rows.append(SamplingRow(SamplingParams(**rng.choice(choices)), prompt, output, None, (0,)))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_penalties_equal_the_per_row_reference(seed):
    rng = random.Random(seed)
    vocab = 97
    rows = random_rows(rng, 16, vocab)
    logits = torch.randn(len(rows), vocab, generator=torch.Generator().manual_seed(seed)) * 3
    table = table_of(rows, logits.device)
    batched = apply_penalties(logits, table.floats, table.history)
    assert torch.equal(batched, per_row_reference(logits, rows))
    assert not torch.equal(batched, logits)  # the penalties did something


def test_rows_without_penalties_are_left_exactly_as_they_were():
    rows = [SamplingRow(SamplingParams(), [1, 2], [3, 3], None, (0,)),
            SamplingRow(SamplingParams(frequency_penalty=1.0), [1, 2], [3, 3], None, (0,))]
    logits = torch.randn(2, 8)
    table = table_of(rows, logits.device)
    out = apply_penalties(logits, table.floats, table.history)
    assert torch.equal(out[0], logits[0])
    assert out[1, 3] == pytest.approx(logits[1, 3].item() - 2.0)


def hf_repetition(path, prompt_ids, n, penalty):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, pad_token_id=0, repetition_penalty=penalty)
    return out[0, len(prompt_ids):].tolist()


def test_batched_repetition_penalties_match_transformers_per_request(tiny_model):
    llm = LLM(str(tiny_model), dtype="float32")
    prompts = ["the cat sat on the mat", "a a a a", "one two three four five six"]
    penalties = [1.6, 1.0, 2.5]
    params = [SamplingParams(temperature=0, max_tokens=10, min_tokens=10, repetition_penalty=p) for p in penalties]
    outs = llm.generate(prompts, params)
    for prompt, penalty, out in zip(prompts, penalties, outs):
        ids = llm.tokenizer.encode(prompt)
        assert list(out.token_ids) == hf_repetition(tiny_model, ids, 10, penalty), (prompt, penalty)


def test_each_request_is_penalized_by_its_own_tokens_whatever_its_neighbours(tiny_model):
    llm = LLM(str(tiny_model), dtype="float32")
    hot = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True, frequency_penalty=-2.0, presence_penalty=-2.0)
    alone = llm.generate(["penalized prompt"], hot)[0].token_ids
    plain = llm.generate(["penalized prompt"], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))[0]
    assert len(set(alone)) < len(set(plain.token_ids))  # rewarding repeats repeats tokens
    neighbours = [SamplingParams(temperature=0, max_tokens=12, repetition_penalty=3.0),
                  SamplingParams(temperature=0.8, seed=4, max_tokens=12, frequency_penalty=-2.0),
                  SamplingParams(temperature=0, max_tokens=12)]
    outs = llm.generate(["penalized prompt", "x y", "z z z z z", "other words here"], [hot] + neighbours)
    assert outs[0].token_ids == alone
