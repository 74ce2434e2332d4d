"""The persistent batch's sampling parameters, one row per request, on the device.

`sampling_values(params)` converts a request's scalar parameters to tensor
rows at intake (so a value torch cannot hold fails that request alone, not
a shared step); `SamplingTable.set(row, values)` places them when the
request joins the batch and `clear(row)` resets the row when it leaves.
Both write the host copy (pinned on CUDA) and mark it dirty; the first step
after a change sends the whole table in one non-blocking copy, so a step
builds no per-request Python lists of parameters: it indexes the device
table with the step's sample rows. The host copy also answers "does any
sampled row need top-k / top-p / min-p / penalties" without reading the
device. Each row also holds the request's draw seed (`sampling_noise`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FLOATS = ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
NEUTRAL = (1.0, 1.0, 0.0, 1.0, 0.0, 0.0)  # a row's values when no request holds it
TEMPERATURE, TOP_P, MIN_P, REPETITION, PRESENCE, FREQUENCY = range(len(FLOATS))


@dataclass(frozen=True)
class SamplingValues:
    """One request's row: floats [len(FLOATS)] float32, top_k [] int64 (<= 0: off)
    and seed [] int64 (its draws' seed, in [0, 2**63))."""

    floats: torch.Tensor
    top_k: torch.Tensor
    seed: torch.Tensor


def sampling_values(params, seed: int | None = None) -> SamplingValues:
    """`seed` defaults to the request's own (0 when it has none). Raises
    (TypeError, OverflowError, ...) for values a tensor cannot hold."""
    floats = torch.tensor([float(getattr(params, name)) for name in FLOATS], dtype=torch.float32)
    seed = seed if seed is not None else (params.seed or 0)
    return SamplingValues(floats, torch.tensor(params.top_k, dtype=torch.int64), torch.tensor(seed, dtype=torch.int64))


def uses_penalties(floats: np.ndarray) -> np.ndarray:
    """floats [S, len(FLOATS)] -> [S] bool: the rows whose penalties change their logits."""
    return (floats[:, REPETITION] != 1.0) | (floats[:, PRESENCE] != 0) | (floats[:, FREQUENCY] != 0)


@dataclass(frozen=True)
class TokenHistory:
    """Token ids of the step's sampled rows that use penalties, P of them:
    rows [P] int64, their indices among the step's S sampled rows (on the
    device, and `rows_host` on the host); token_ids [P, L] int64, prompt then
    output ids, valid below num_tokens [P]; num_prompt [P] prompt lengths."""

    rows: torch.Tensor
    rows_host: np.ndarray
    token_ids: torch.Tensor
    num_prompt: torch.Tensor
    num_tokens: torch.Tensor

    def select(self, rows: list[int]) -> "TokenHistory | None":
        """The history of sampled rows `rows`, renumbered 0..len(rows)-1 (None if none has one)."""
        where = {int(r): j for j, r in enumerate(self.rows_host)}
        pairs = [(k, where[r]) for k, r in enumerate(rows) if r in where]
        if not pairs:
            return None
        new, old = (list(x) for x in zip(*pairs))
        idx = torch.tensor(old, dtype=torch.int64, device=self.rows.device)
        return TokenHistory(torch.tensor(new, dtype=torch.int64, device=self.rows.device), np.asarray(new),
                            self.token_ids.index_select(0, idx), self.num_prompt.index_select(0, idx),
                            self.num_tokens.index_select(0, idx))


@dataclass(frozen=True)
class SamplingRows:
    """The sampled rows' parameters for one step, on the device: floats
    [S, len(FLOATS)], top_k [S], seeds [S] and offsets [S] (each row's
    outputs so far: which draw of its request this is); `uses_*` say (from
    the host copy) whether any row needs that warp, so the sampler skips the
    others without a device read; `history` the token ids of the rows that
    use penalties (None when none does)."""

    floats: torch.Tensor
    top_k: torch.Tensor
    uses_top_k: bool
    uses_top_p: bool
    uses_min_p: bool
    seeds: torch.Tensor
    offsets: torch.Tensor
    history: TokenHistory | None = None

    def column(self, index: int) -> torch.Tensor:
        return self.floats[:, index]

    def select(self, rows: list[int]) -> "SamplingRows":
        """The same parameters for a subset of the rows, renumbered in `rows`' order."""
        idx = torch.as_tensor(rows, dtype=torch.int64, device=self.floats.device)
        history = self.history.select(rows) if self.history is not None else None
        return SamplingRows(self.floats.index_select(0, idx), self.top_k.index_select(0, idx),
                            self.uses_top_k, self.uses_top_p, self.uses_min_p,
                            self.seeds.index_select(0, idx), self.offsets.index_select(0, idx), history)


class SamplingTable:
    """floats [R, F] float32, top_k [R] and seed [R] int64, on the host and on `device`."""

    def __init__(self, rows: int, device: torch.device, pin: bool):
        self.device, self.pin = torch.device(device), pin
        self.capacity = 0
        self._grow_to(max(rows, 1))

    def _host(self, *shape, dtype) -> torch.Tensor:
        t = torch.zeros(*shape, dtype=dtype)
        return t.pin_memory() if self.pin else t

    def _grow_to(self, rows: int) -> None:
        floats, ints = self._host(rows, len(FLOATS), dtype=torch.float32), self._host(rows, 2, dtype=torch.int64)
        floats[:] = torch.tensor(NEUTRAL)
        if self.capacity:
            floats[:self.capacity], ints[:self.capacity] = self.floats_host, self.ints_host
        self.floats_host, self.ints_host = floats, ints  # ints: [R, 2] (top_k, seed)
        self.floats_np, self.top_k_np = floats.numpy(), ints.numpy()[:, 0]
        self.capacity = rows
        self._dirty = True
        self.floats_dev = self.ints_dev = None

    def ensure(self, rows: int) -> None:
        """Room for `rows` rows (the batch grew)."""
        if rows > self.capacity:
            self._grow_to(rows)

    def set(self, row: int, values: SamplingValues) -> None:
        self.floats_host[row] = values.floats
        self.ints_host[row, 0], self.ints_host[row, 1] = values.top_k, values.seed
        self._dirty = True

    def clear(self, row: int) -> None:
        self.floats_np[row], self.ints_host.numpy()[row] = NEUTRAL, 0
        self._dirty = True

    def penalized(self, host_rows: np.ndarray) -> np.ndarray:
        """[S] bool: which of batch rows `host_rows` use penalties (host copy, no device read)."""
        return uses_penalties(self.floats_np[host_rows])

    def _flush(self) -> None:
        if self.device.type == "cpu":
            self.floats_dev, self.ints_dev = self.floats_host, self.ints_host
        else:
            if self.floats_dev is None:
                self.floats_dev = torch.empty_like(self.floats_host, device=self.device)
                self.ints_dev = torch.empty_like(self.ints_host, device=self.device)
            self.floats_dev.copy_(self.floats_host, non_blocking=True)
            self.ints_dev.copy_(self.ints_host, non_blocking=True)
        self._dirty = False

    def rows(self, host_rows: np.ndarray, device_rows: torch.Tensor, offsets: torch.Tensor,
             history: TokenHistory | None = None) -> SamplingRows:
        """Parameters of batch rows `host_rows` ([S] numpy; the same rows already on
        the device), with their draws' `offsets` [S] and penalty `history`."""
        if self._dirty:
            self._flush()
        f = self.floats_np[host_rows]
        ints = self.ints_dev.index_select(0, device_rows)  # [S, 2]
        return SamplingRows(self.floats_dev.index_select(0, device_rows), ints[:, 0],
                            bool((self.top_k_np[host_rows] > 0).any()), bool((f[:, TOP_P] < 1).any()),
                            bool((f[:, MIN_P] > 0).any()), ints[:, 1], offsets, history)
