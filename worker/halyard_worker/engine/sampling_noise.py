"""Per-request random draws for a whole batch in one set of tensor ops.

A sampled row's exponential noise over the vocabulary is a pure function of
(the request's seed, how many tokens it has output so far, token id): a
32-bit integer hash (`_mix`, a bijection on [0, 2**32)) of those three,
turned into a uniform in (0, 1) and then into -log(u). So a request with a
seed draws the same tokens whatever else is in the batch, on any device,
and across preemption (the output count survives recomputation) or a
retried step, without one torch.Generator per request looped over in
Python. Sampling is then argmax(probs / noise) (the exponential race: an exact
draw from the distribution `probs`).

Every product below is a value < 2**32 times a constant < 2**31, so int64
arithmetic never overflows on any backend.
"""
from __future__ import annotations

import torch

_MASK = 0xFFFFFFFF
_M1, _M2 = 0x7FEB352D, 0x5BD1E995  # odd, < 2**31
_GOLDEN = 0x1E3779B9  # < 2**31: spreads consecutive ids before mixing


def _mix(x: torch.Tensor) -> torch.Tensor:
    """x: int64 in [0, 2**32) -> int64 in [0, 2**32), a bijection (updates x in place)."""
    x.bitwise_xor_(x >> 16).mul_(_M1).bitwise_and_(_MASK)
    x.bitwise_xor_(x >> 15).mul_(_M2).bitwise_and_(_MASK)
    return x.bitwise_xor_(x >> 16)


def row_keys(seeds: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """seeds [S] int64 in [0, 2**63), offsets [S] int64 (outputs so far) -> [S] keys in [0, 2**32)."""
    key = _mix(_mix(seeds & _MASK) ^ (seeds >> 32))
    return _mix(key ^ (offsets & _MASK))


def exponential_noise(seeds: torch.Tensor, offsets: torch.Tensor, vocab: int) -> torch.Tensor:
    """[S, vocab] float32 Exp(1) draws, row r a function of (seeds[r], offsets[r]) alone."""
    ids = _mix((torch.arange(vocab, dtype=torch.int64, device=seeds.device) * _GOLDEN) & _MASK)  # [V]
    bits = _mix(row_keys(seeds, offsets)[:, None] ^ ids[None, :])  # [S, V]
    u = (bits >> 8).to(torch.float32).add_(0.5).mul_(1.0 / (1 << 24))  # (0, 1), 24 bits: exact in float32
    return u.log_().neg_()
