"""The runner's persistent batch: one host row per request, updated from diffs.

A row holds a request's known token ids, KV progress and block table in
numpy arrays (views of CPU tensors, pinned when the device is CUDA), so a
step gathers its inputs with a few vectorized indexing operations instead
of Python lists over every request, and sends them to the device in one
copy. Rows are assigned when a request arrives (or is readmitted after
preemption) and freed when it finishes; the arrays grow when rows run out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class RowInfo:
    """Per-request values the vectorized arrays do not hold."""

    row: int
    num_prompt_tokens: int
    params: object  # SamplingParams
    special: bool  # needs the full sampler (not plain greedy argmax)


class InputBatch:
    """Arrays, R rows: token_ids [R, L] int64, num_tokens [R], num_computed [R], num_prompt [R],
    block_table [R, MB] int64, num_blocks [R]; `rid[r]` is row r's request id,
    `special[r]` whether it needs the full sampler (not plain greedy argmax)."""

    def __init__(self, rows: int, max_model_len: int, block_size: int, pin: bool = False):
        self.max_model_len, self.block_size, self.pin = max_model_len, block_size, pin
        self.max_blocks = -(-max_model_len // block_size)
        self.info: dict[str, RowInfo] = {}
        self.row_of: dict[str, int] = {}
        self.free: list[int] = []
        self.capacity = 0
        self._grow(max(rows, 1))

    def _array(self, *shape) -> np.ndarray:
        t = torch.zeros(*shape, dtype=torch.int64)
        return (t.pin_memory() if self.pin else t).numpy()

    def _grow(self, rows: int) -> None:
        old = self.capacity
        new = {"token_ids": self._array(rows, self.max_model_len), "num_tokens": self._array(rows),
               "num_computed": self._array(rows), "num_prompt": self._array(rows),
               "block_table": self._array(rows, self.max_blocks),
               "num_blocks": self._array(rows)}
        for name, arr in new.items():
            if old:
                arr[:old] = getattr(self, name)
            setattr(self, name, arr)
        rid, special = np.empty(rows, dtype=object), np.zeros(rows, dtype=bool)
        if old:
            rid[:old], special[:old] = self.rid, self.special
        self.rid, self.special = rid, special
        self.free.extend(range(rows - 1, old - 1, -1))
        self.capacity = rows

    def add(self, request_id: str, token_ids, num_prompt_tokens: int, block_ids, num_computed: int,
            params, special: bool) -> None:
        """Place (or replace, after preemption) a request's row."""
        if request_id in self.info:
            row = self.info[request_id].row
        else:
            if not self.free:
                self._grow(2 * self.capacity)
            row = self.free.pop()
        n, nb = len(token_ids), len(block_ids)
        self.token_ids[row, :n] = token_ids
        self.num_tokens[row], self.num_computed[row], self.num_prompt[row] = n, num_computed, num_prompt_tokens
        self.block_table[row, :nb] = block_ids
        self.num_blocks[row] = nb
        self.rid[row], self.special[row] = request_id, special
        self.info[request_id] = RowInfo(row, num_prompt_tokens, params, special)
        self.row_of[request_id] = row

    def remove(self, request_id: str) -> None:
        info = self.info.pop(request_id, None)
        if info is not None:
            del self.row_of[request_id]
            self.rid[info.row], self.special[info.row] = None, False
            self.free.append(info.row)

    def append_blocks(self, request_id: str, block_ids) -> None:
        row = self.row_of[request_id]
        start = self.num_blocks[row]
        self.block_table[row, start:start + len(block_ids)] = block_ids
        self.num_blocks[row] = start + len(block_ids)

    def rows_of(self, request_ids) -> np.ndarray:
        return np.fromiter(map(self.row_of.__getitem__, request_ids), dtype=np.int64, count=len(request_ids))

    def slots(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Flat KV slot (block * block_size + offset) of each (row, position)."""
        b = self.block_size
        return self.block_table[rows, positions // b] * b + positions % b

    def append_tokens(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Each row's sampled token goes after its last known token."""
        self.token_ids[rows, self.num_tokens[rows]] = tokens
        self.num_tokens[rows] += 1

    def histories(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(token ids [P, L], num_prompt [P], num_tokens [P]) of `rows`, L their longest
        (ids past a row's num_tokens are stale and must be masked)."""
        n = self.num_tokens[rows]
        return self.token_ids[rows, :max(1, int(n.max()))], self.num_prompt[rows], n
