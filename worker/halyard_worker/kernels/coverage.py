"""Which hot-path ops the CUDA kernels cover for a model: a pure decision.

`--kernels auto` runs each op on the CuPy kernel when the model's shapes and
dtype are inside what that kernel supports, and on the torch reference
otherwise, so an unusual head size or GQA ratio costs speed on one op, never
a failed request. `--kernels cupy` asks for the kernels everywhere and is
refused (naming the op and the reason) when one cannot run. The limits
mirror the launchers' argument checks. No torch or CuPy import here.
"""
from __future__ import annotations

from dataclasses import dataclass

HEAD_DIMS = (16, 32, 64, 128, 256)  # paged_attention.cu instantiations
PREFILL_HEAD_DIMS = (32, 64, 128, 256)  # prefill_attention.cu instantiations
MAX_GROUP = 8  # query heads per KV head in paged_attention.cu
KERNEL_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class ModelShape:
    """What the kernels' coverage depends on. `dtype` is the activation dtype's name."""

    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    dtype: str


@dataclass(frozen=True)
class OpPlan:
    """`cupy` ops run on the kernels; `torch` maps each other op to why it cannot."""

    cupy: tuple[str, ...]
    torch: dict[str, str]

    def describe(self) -> str:
        """One log line: which ops run where, and why the torch ones do."""
        on_cupy = ", ".join(self.cupy) or "none"
        on_torch = "; ".join(f"{op} ({why})" for op, why in self.torch.items()) or "none"
        return f"cupy: {on_cupy} | torch: {on_torch}"


def _limits(s: ModelShape) -> dict[str, str | None]:
    """Per op: None when the kernel covers `s`, else the reason."""
    group = s.num_heads // s.num_kv_heads if s.num_kv_heads and s.num_heads % s.num_kv_heads == 0 else None
    attention = None
    if s.head_dim not in HEAD_DIMS:
        attention = f"head dim {s.head_dim} is not one of {HEAD_DIMS}"
    elif group is None or group > MAX_GROUP:
        attention = f"GQA ratio {s.num_heads}/{s.num_kv_heads} is not an integer <= {MAX_GROUP}"
    prefill = attention
    if attention is None and s.head_dim not in PREFILL_HEAD_DIMS:
        prefill = f"head dim {s.head_dim} is not one of {PREFILL_HEAD_DIMS}"
    norm = None if s.hidden_size % 8 == 0 else f"hidden size {s.hidden_size} is not a multiple of 8"
    return {
        "rms_norm": norm,
        "fused_add_rms_norm": norm,
        "rotary": None if s.head_dim % 2 == 0 else f"head dim {s.head_dim} is odd",
        "silu_and_mul": None if s.intermediate_size % 8 == 0
        else f"intermediate size {s.intermediate_size} is not a multiple of 8",
        "write_kv": None if (s.num_kv_heads * s.head_dim) % 8 == 0
        else f"KV heads x head dim {s.num_kv_heads * s.head_dim} is not a multiple of 8",
        "paged_attention_prefill": prefill,
        "paged_attention_decode": attention,
        "int8_linear": None,  # the launcher itself routes shapes it does not cover to torch
        "int4_linear": None,
    }


def plan_ops(op_names: tuple[str, ...], shape: ModelShape | None, env_reason: str | None) -> OpPlan:
    """Per-op choice. `env_reason` says why no kernel can run at all (no GPU,
    no CuPy, no NVRTC, CPU device), or is None; `shape` None means unknown
    (every op that the environment allows goes to the kernels)."""
    if env_reason is None and shape is not None and shape.dtype not in KERNEL_DTYPES:
        env_reason = f"dtype {shape.dtype} (the kernels take float16 or bfloat16)"
    if env_reason is not None:
        return OpPlan((), {op: env_reason for op in op_names})
    limits = _limits(shape) if shape is not None else {}
    cupy = tuple(op for op in op_names if limits.get(op) is None)
    return OpPlan(cupy, {op: limits[op] for op in op_names if limits.get(op) is not None})
