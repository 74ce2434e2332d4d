"""The persistent batch's sampling parameters, one row per request, on the device.

`sampling_values(params)` converts a request's scalar parameters to tensor
rows at intake (so a value torch cannot hold fails that request alone, not
a shared step); `SamplingTable.set(row, values)` places them when the
request joins the batch and `clear(row)` resets the row when it leaves.
Both write the host copy (pinned on CUDA) and mark it dirty; the first step
after a change sends the whole table in one non-blocking copy, so a step
builds no per-request Python lists of parameters: it indexes the device
table with the step's sample rows. The host copy also answers "does any
sampled row need top-k / top-p / min-p" without reading the device.
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
    """One request's row: floats [len(FLOATS)] float32 and top_k [] int64 (<= 0: off)."""

    floats: torch.Tensor
    top_k: torch.Tensor


def sampling_values(params) -> SamplingValues:
    """Raises (TypeError, OverflowError, ...) for values a tensor cannot hold."""
    floats = torch.tensor([float(getattr(params, name)) for name in FLOATS], dtype=torch.float32)
    return SamplingValues(floats, torch.tensor(params.top_k, dtype=torch.int64))


@dataclass(frozen=True)
class SamplingRows:
    """The sampled rows' parameters for one step: floats [S, len(FLOATS)] and
    top_k [S] on the device; `uses_*` say (from the host copy) whether any row
    needs that warp, so the sampler skips the others without a device read."""

    floats: torch.Tensor
    top_k: torch.Tensor
    uses_top_k: bool
    uses_top_p: bool
    uses_min_p: bool

    def column(self, index: int) -> torch.Tensor:
        return self.floats[:, index]

    def select(self, rows) -> "SamplingRows":
        """The same parameters for a subset of the rows (list or tensor of indices)."""
        idx = torch.as_tensor(rows, dtype=torch.int64, device=self.floats.device)
        return SamplingRows(self.floats.index_select(0, idx), self.top_k.index_select(0, idx),
                            self.uses_top_k, self.uses_top_p, self.uses_min_p)


class SamplingTable:
    """floats [R, F] float32 and top_k [R] int64, on the host and on `device`."""

    def __init__(self, rows: int, device: torch.device, pin: bool):
        self.device, self.pin = torch.device(device), pin
        self.capacity = 0
        self._grow_to(max(rows, 1))

    def _host(self, *shape, dtype) -> torch.Tensor:
        t = torch.zeros(*shape, dtype=dtype)
        return t.pin_memory() if self.pin else t

    def _grow_to(self, rows: int) -> None:
        floats, top_k = self._host(rows, len(FLOATS), dtype=torch.float32), self._host(rows, dtype=torch.int64)
        floats[:] = torch.tensor(NEUTRAL)
        if self.capacity:
            floats[:self.capacity], top_k[:self.capacity] = self.floats_host, self.top_k_host
        self.floats_host, self.top_k_host = floats, top_k
        self.floats_np, self.top_k_np = floats.numpy(), top_k.numpy()
        self.capacity = rows
        self._dirty = True
        self.floats_dev = self.top_k_dev = None

    def ensure(self, rows: int) -> None:
        """Room for `rows` rows (the batch grew)."""
        if rows > self.capacity:
            self._grow_to(rows)

    def set(self, row: int, values: SamplingValues) -> None:
        self.floats_host[row], self.top_k_host[row] = values.floats, values.top_k
        self._dirty = True

    def clear(self, row: int) -> None:
        self.floats_np[row], self.top_k_np[row] = NEUTRAL, 0
        self._dirty = True

    def _flush(self) -> None:
        if self.device.type == "cpu":
            self.floats_dev, self.top_k_dev = self.floats_host, self.top_k_host
        else:
            if self.floats_dev is None:
                self.floats_dev = torch.empty_like(self.floats_host, device=self.device)
                self.top_k_dev = torch.empty_like(self.top_k_host, device=self.device)
            self.floats_dev.copy_(self.floats_host, non_blocking=True)
            self.top_k_dev.copy_(self.top_k_host, non_blocking=True)
        self._dirty = False

    def rows(self, host_rows: np.ndarray, device_rows: torch.Tensor) -> SamplingRows:
        """Parameters of batch rows `host_rows` ([S] numpy; the same rows already on the device)."""
        if self._dirty:
            self._flush()
        f = self.floats_np[host_rows]
        return SamplingRows(self.floats_dev.index_select(0, device_rows), self.top_k_dev.index_select(0, device_rows),
                            bool((self.top_k_np[host_rows] > 0).any()), bool((f[:, TOP_P] < 1).any()),
                            bool((f[:, MIN_P] > 0).any()))
