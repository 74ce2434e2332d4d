"""`--kernels cupy|torch|auto`: pick the implementation of the model's hot-path ops.

`select_ops(mode, device)` returns a `KernelOps` whose fields have the names
and signatures of the engine's op indirection (`halyard_worker.model.ops`);
`KernelOps.install(ops)` swaps them in with `ops.use(name, fn)`. The engine
adopts a choice with one call at start-up:

    select_ops(config.kernels, device).install(halyard_worker.model.ops)
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields
from typing import Callable

from halyard_worker.options import KERNEL_MODES

MODES = KERNEL_MODES


@dataclass(frozen=True)
class KernelOps:
    """One implementation of every hot-path op. `mode` is what was chosen: "cupy" or "torch".

    Invariant: every callable has the signature of the op of the same name in
    `halyard_worker.model.ops` and returns tensors of the same shapes and dtype.
    """

    mode: str
    rms_norm: Callable
    rotary: Callable
    silu_and_mul: Callable
    write_kv: Callable
    paged_attention_prefill: Callable
    paged_attention_decode: Callable
    int8_linear: Callable
    int4_linear: Callable

    @staticmethod
    def op_names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(KernelOps) if f.name != "mode")

    def install(self, ops_module) -> None:
        """Swap every op of `ops_module` (an object with `use(name, fn)`) for this set."""
        for name in self.op_names():
            ops_module.use(name, getattr(self, name))


def cupy_missing_reason(device) -> str | None:
    """Why the CuPy kernels cannot run on `device`, or None when they can."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return f"device is {device.type!r}, the CuPy kernels need a CUDA device"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (install the 'gpu' extra: cupy-cuda13x)"
    from halyard_worker.kernels.nvrtc import NvrtcError, find_toolchain

    try:
        find_toolchain()
    except NvrtcError as err:
        return str(err)
    return None


def resolve_mode(mode: str, device) -> str:
    """'auto' -> 'cupy' when the CuPy kernels can run on `device`, else 'torch'."""
    if mode not in MODES:
        raise ValueError(f"--kernels must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "torch":
        return "torch"
    reason = cupy_missing_reason(device)
    if mode == "cupy" and reason is not None:
        raise ValueError(f"--kernels cupy cannot run: {reason}; use --kernels torch or auto")
    return "cupy" if reason is None else "torch"


def _torch_ops() -> KernelOps:
    from halyard_worker.kernels import reference as r

    return KernelOps("torch", r.rms_norm, r.rotary, r.silu_and_mul, r.write_kv, r.paged_attention_prefill,
                     r.paged_attention_decode, r.int8_linear, r.int4_linear)


def _cupy_ops() -> KernelOps:
    from halyard_worker.kernels import kv_cache, paged_attention, quant_gemm, reference, rmsnorm, rotary, silu_mul

    return KernelOps("cupy", rmsnorm.rms_norm, rotary.rotary, silu_mul.silu_and_mul, kv_cache.write_kv,
                     reference.paged_attention_prefill,  # prefill attention stays on torch SDPA
                     paged_attention.paged_attention_decode, quant_gemm.int8_linear, quant_gemm.int4_linear)


def select_ops(mode: str, device) -> KernelOps:
    """The op set for `--kernels mode` on `device` ("cuda", "cuda:1", "cpu", torch.device)."""
    return _cupy_ops() if resolve_mode(mode, device) == "cupy" else _torch_ops()


def add_kernels_argument(parser) -> None:
    """`--kernels {auto,cupy,torch}` for a command line (the server's `serve`, benchmarks)."""
    parser.add_argument("--kernels", choices=MODES, default="auto",
                        help="hot-path ops: CUDA kernels via CuPy, the torch reference, "
                             "or auto (CuPy when a CUDA GPU, CuPy and NVRTC are present)")
