"""Launcher of silu_mul.cu: silu(gate) * up of the merged gate/up projection."""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require

THREADS = 256


def silu_and_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up: [T, 2I] (gate then up) -> [T, I]."""
    require(gate_up.is_contiguous(),
            "silu_and_mul: gate_up must be a contiguous tensor [T, 2I]")
    two_i = gate_up.shape[-1]
    require(two_i % 16 == 0, f"silu_and_mul: last dim must be 2I with I a multiple of 8, got {two_i}")
    require(aligned16(gate_up), "silu_and_mul: gate_up must start on a 16-byte boundary")
    inter = two_i // 2
    rows = gate_up.numel() // two_i
    out = torch.empty(*gate_up.shape[:-1], inter, dtype=gate_up.dtype, device=gate_up.device)
    if rows:
        grid = (rows, -(-inter // (8 * THREADS)))
        launch("silu_mul", f"silu_mul_{dtype_tag(gate_up.dtype)}", gate_up.device, grid, (THREADS,),
               (ptr(gate_up), ptr(out), np.int32(inter)))
    return out
