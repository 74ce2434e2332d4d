"""Sampler: masks, penalties, seeded reproducibility (torch, no model)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.engine.sampler import (  # noqa: E402
    SamplingRow, apply_min_p, apply_penalties, apply_top_k, apply_top_p, mask_min_tokens, sample, table_of,
)
from halyard_worker.engine.types import SamplingParams  # noqa: E402

INF = float("-inf")


def row(params=None, prompt=(), output=(), seed=None, num_output=None):
    params = params or SamplingParams()
    return SamplingRow(params, list(prompt), list(output), seed, eos_token_ids=(0,), num_output=num_output)


def penalize(logits, rows):
    table = table_of(rows, logits.device)
    return apply_penalties(logits, table.floats, table.history)


def test_top_k_keeps_k_largest_per_row_and_zero_disables():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0], [1.0, 4.0, 3.0, 2.0]])
    out = apply_top_k(logits, torch.tensor([2, 0]))
    assert torch.isinf(out[0]).tolist() == [True, False, False, True]
    assert torch.equal(out[1], logits[1])


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = apply_top_p(probs.log(), torch.tensor([0.7]))
    assert torch.isinf(out[0]).tolist() == [False, False, True, True]
    out = apply_top_p(probs.log(), torch.tensor([0.1]))
    assert torch.isinf(out[0]).tolist() == [False, True, True, True]  # always keeps the top one


def test_min_p_scales_with_top_probability():
    probs = torch.tensor([[0.6, 0.25, 0.1, 0.05]])
    out = apply_min_p(probs.log(), torch.tensor([0.2]))  # threshold 0.12
    assert torch.isinf(out[0]).tolist() == [False, False, True, True]


def test_repetition_penalty_divides_positive_and_multiplies_negative():
    logits = torch.tensor([[2.0, -2.0, 2.0, 1.0]])
    out = penalize(logits, [row(SamplingParams(repetition_penalty=2.0), prompt=[0], output=[1])])
    assert out[0].tolist() == [1.0, -4.0, 2.0, 1.0]


def test_presence_and_frequency_penalties_use_output_counts():
    logits = torch.zeros(1, 4)
    params = SamplingParams(presence_penalty=0.5, frequency_penalty=0.25)
    out = penalize(logits, [row(params, prompt=[3], output=[1, 1, 2])])
    assert out[0].tolist() == [0.0, -1.0, -0.75, 0.0]


def test_min_tokens_masks_eos_and_stop_tokens():
    logits = torch.zeros(2, 5)
    rows = [row(SamplingParams(min_tokens=2, stop_token_ids=[3]), output=[1]),
            row(SamplingParams(min_tokens=2, stop_token_ids=[3]), output=[1, 1])]
    out = mask_min_tokens(logits.clone(), rows)
    assert torch.isinf(out[0]).tolist() == [True, False, False, True, False]
    assert not torch.isinf(out[1]).any()


def test_greedy_is_argmax():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])
    tokens, _ = sample(logits, [row(SamplingParams(temperature=0)), row(SamplingParams(temperature=0))])
    assert tokens == [1, 0]


def test_seeded_sampling_is_reproducible_and_independent_of_batch():
    torch.manual_seed(0)
    logits = torch.randn(3, 50)
    params = SamplingParams(temperature=1.0, seed=123)

    def draw(seed, steps=20):  # one draw per output position, as a request makes them
        return [sample(logits[[0]], [row(params, seed=seed, num_output=k)])[0][0] for k in range(steps)]

    alone = draw(123)
    assert alone == draw(123)
    assert len(set(alone)) > 1  # it does sample
    assert draw(124) != alone


def test_a_seeded_row_draws_the_same_tokens_whatever_its_neighbours():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    seeded = SamplingParams(temperature=1.0, seed=123)
    others = [SamplingParams(temperature=0.7, top_p=0.5, seed=5), SamplingParams(temperature=0),
              SamplingParams(temperature=2.0, top_k=3, presence_penalty=1.0)]
    for k in range(10):
        alone = sample(logits[[0]], [row(seeded, seed=123, num_output=k)])[0][0]
        rows = [row(p, output=[1, 2], seed=p.seed) for p in others] + [row(seeded, seed=123, num_output=k)]
        batched = sample(torch.cat([logits[1:], logits[[0]]]), rows)[0]
        assert batched[-1] == alone


def test_top_k_one_equals_greedy_even_at_high_temperature():
    torch.manual_seed(1)
    logits = torch.randn(4, 30)
    rows = [row(SamplingParams(temperature=5.0, top_k=1), seed=i) for i in range(4)]
    tokens, _ = sample(logits, rows)
    assert tokens == logits.argmax(-1).tolist()


def test_sampling_follows_the_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    counts = [0, 0, 0]
    for k in range(3000):  # successive output positions of one seeded request
        counts[sample(logits, [row(SamplingParams(temperature=1.0), seed=7, num_output=k)])[0][0]] += 1
    expected = torch.softmax(logits[0], -1).tolist()
    assert all(abs(c / 3000 - e) < 0.03 for c, e in zip(counts, expected))


def test_logprobs_are_raw_and_top_n_sorted():
    logits = torch.tensor([[0.0, 2.0, 1.0, -1.0]])
    _, lps = sample(logits, [row(SamplingParams(temperature=0, logprobs=2, repetition_penalty=3.0), output=[1])])
    full, top = lps[0]
    ref = torch.log_softmax(logits[0], -1)
    assert [t for t, _ in top] == [1, 2]
    assert top[0][1] == pytest.approx(ref[1].item())
