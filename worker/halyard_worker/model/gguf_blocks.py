"""GGML block formats -> Halyard's quantized layouts (no float round trip).

Blocks run along a row (the input dim) 32 values at a time:
- Q4_0: fp16 d, 16 bytes of nibbles; w = (q - 8) * d.
- Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; w = q * d + m.
- Q8_0: fp16 d, 32 int8; w = q * d.
Inside a block byte j holds value j (low nibble) and value j + 16 (high).
Halyard's int4 packs value 2c in the low nibble and 2c + 1 in the high one,
with w = (q - zero) * scale per group of 32: Q4_0 is scale d, zero 8; Q4_1
is scale d, zero -m / d (exact up to float rounding; a block with d = 0 is
all m, kept as q = 0, scale 1, zero -m).
"""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.model.weights import QuantizedWeight

BLOCK = 32


def _blocks(data: np.ndarray, rows: int, block_bytes: int) -> np.ndarray:
    """uint8 [rows, n_blocks, block_bytes] (numpy: single-threaded, no copy of the file)."""
    return np.ascontiguousarray(data).view(np.uint8).reshape(rows, -1, block_bytes)


def _half(blocks: np.ndarray, start: int) -> torch.Tensor:
    """fp16 stored at byte `start` of each block -> float32 [rows, n_blocks]."""
    raw = np.ascontiguousarray(blocks[..., start:start + 2]).view(np.float16)[..., 0]
    return torch.from_numpy(raw.astype(np.float32))


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """qs: [rows, n_blocks, 16] -> q: [rows, n_blocks * 32] uint8 in block order."""
    q = np.concatenate((qs & 0x0F, qs >> 4), axis=-1)  # [rows, n_blocks, 32]
    return q.reshape(qs.shape[0], -1)


def _pack(q: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(q[:, 0::2] | (q[:, 1::2] << 4)))


def q4_0(data: np.ndarray, rows: int) -> QuantizedWeight:
    b = _blocks(data, rows, 18)
    scales = _half(b, 0)
    return QuantizedWeight("int4", _pack(_nibbles(b[..., 2:])), scales, torch.full_like(scales, 8.0), BLOCK)


def q4_1(data: np.ndarray, rows: int) -> QuantizedWeight:
    b = _blocks(data, rows, 20)
    d, m = _half(b, 0), _half(b, 2)
    q = _nibbles(b[..., 4:])
    flat = d == 0  # every value of such a block is m
    if flat.any():
        q = q.reshape(rows, -1, BLOCK).copy()
        q[flat.numpy()] = 0
        q = q.reshape(rows, -1)
    scales = torch.where(flat, torch.ones_like(d), d)
    zeros = torch.where(flat, -m, -m / scales)
    return QuantizedWeight("int4", _pack(q), scales, zeros, BLOCK)


def q8_0_values(data: np.ndarray, rows: int) -> torch.Tensor:
    """Q8_0 -> float32 [rows, cols], exactly q * d."""
    b = _blocks(data, rows, 34)
    d = _half(b, 0).numpy()
    q = np.ascontiguousarray(b[..., 2:]).view(np.int8).astype(np.float32)  # [rows, n_blocks, 32]
    return torch.from_numpy((q * d[..., None]).reshape(rows, -1))
