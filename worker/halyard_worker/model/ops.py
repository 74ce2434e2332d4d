"""The model's hot-path ops, one level of indirection away from the code.

Model code calls `ops.rms_norm(...)`, `ops.paged_attention_decode(...)` etc.
By default each name is the torch reference in `torch_ops`; a kernels module
swaps in its own implementation with `ops.use(name, fn)` (same signature,
same shapes) and `ops.reset()` restores the references.
"""
from __future__ import annotations

from halyard_worker.model import torch_ops

OP_NAMES = (
    "rms_norm",
    "fused_add_rms_norm",
    "rotary",
    "silu_and_mul",
    "write_kv",
    "paged_attention_prefill",
    "paged_attention_decode",
    "int8_linear",
    "int4_linear",
)

rms_norm = torch_ops.rms_norm
fused_add_rms_norm = torch_ops.fused_add_rms_norm
rotary = torch_ops.rotary
silu_and_mul = torch_ops.silu_and_mul
write_kv = torch_ops.write_kv
paged_attention_prefill = torch_ops.paged_attention_prefill
paged_attention_decode = torch_ops.paged_attention_decode
int8_linear = torch_ops.int8_linear
int4_linear = torch_ops.int4_linear


def use(name: str, fn) -> None:
    """Replace op `name` with `fn` for every model in this process."""
    if name not in OP_NAMES:
        raise KeyError(f"unknown op {name!r}; ops are {', '.join(OP_NAMES)}")
    globals()[name] = fn


def reference(name: str):
    """The torch reference implementation of op `name`."""
    if name not in OP_NAMES:
        raise KeyError(f"unknown op {name!r}; ops are {', '.join(OP_NAMES)}")
    return getattr(torch_ops, name)


def reset() -> None:
    """Restore every op to its torch reference."""
    for name in OP_NAMES:
        globals()[name] = getattr(torch_ops, name)
