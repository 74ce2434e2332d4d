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

from halyard_worker.kernels.coverage import ModelShape, OpPlan, plan_ops

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
    fused_add_rms_norm: Callable
    rotary: Callable
    silu_and_mul: Callable
    write_kv: Callable
    paged_attention_prefill: Callable
    paged_attention_decode: Callable
    int8_linear: Callable
    int4_linear: Callable

    plan: OpPlan | None = None  # which ops run where (and why), for the start-up log

    @staticmethod
    def op_names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(KernelOps) if f.name not in ("mode", "plan"))

    @property
    def name(self) -> str:
        """The chosen mode as the start-up log prints it, e.g. "cupy (torch for 1 op)"."""
        if self.plan is None or not self.plan.torch or not self.plan.cupy:
            return self.mode
        return f"{self.mode} (torch for {len(self.plan.torch)} of {len(self.op_names())} ops)"

    def describe(self) -> str:
        return self.plan.describe() if self.plan is not None else f"{self.mode}: every op"

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


def _torch_table() -> dict[str, Callable]:
    from halyard_worker.model import torch_ops

    return {name: getattr(torch_ops, name) for name in KernelOps.op_names()}


def _cupy_table() -> dict[str, Callable]:
    from halyard_worker.kernels import (
        kv_cache, paged_attention, prefill_attention, quant_gemm, rmsnorm, rotary, silu_mul)

    return {"rms_norm": rmsnorm.rms_norm, "fused_add_rms_norm": rmsnorm.fused_add_rms_norm,
            "rotary": rotary.rotary, "silu_and_mul": silu_mul.silu_and_mul, "write_kv": kv_cache.write_kv,
            "paged_attention_prefill": prefill_attention.paged_attention_prefill,
            "paged_attention_decode": paged_attention.paged_attention_decode,
            "int8_linear": quant_gemm.int8_linear, "int4_linear": quant_gemm.int4_linear}


def select_ops(mode: str, device, shape: ModelShape | None = None) -> KernelOps:
    """The op set for `--kernels mode` on `device` ("cuda", "cuda:1", "cpu", torch.device).

    With the model's `shape`, "auto" runs each op the kernels do not cover
    on torch (`coverage.plan_ops`); "cupy" refuses such a model, naming the op."""
    chosen = resolve_mode(mode, device)
    env = None if chosen == "cupy" else (cupy_missing_reason(device) if mode == "auto" else "--kernels torch")
    plan = plan_ops(KernelOps.op_names(), shape, env)
    if mode == "cupy" and plan.torch:
        # (prefill attention may still fall back: its kernel covers fewer head dims than decode's)
        refused = {op: why for op, why in plan.torch.items() if op != "paged_attention_prefill"}
        if refused:
            raise ValueError("--kernels cupy cannot run this model: " +
                             "; ".join(f"{op}: {why}" for op, why in refused.items()) + "; use --kernels auto")
    table = _torch_table()
    if plan.cupy:
        cupy = _cupy_table()
        table.update({op: cupy[op] for op in plan.cupy})
    return KernelOps("cupy" if plan.cupy else "torch", plan=plan, **table)


KERNEL_FILES = {"rms_norm": "rmsnorm", "fused_add_rms_norm": "rmsnorm", "rotary": "rotary",
                "silu_and_mul": "silu_mul", "write_kv": "kv_cache", "paged_attention_decode": "paged_attention",
                "paged_attention_prefill": "prefill_attention",
                "int8_linear": "w8a16_gemm", "int4_linear": "w4a16_gemm"}


def preload(ops: KernelOps, device) -> tuple[str, ...]:
    """Compile (or load from the cubin cache) every kernel module the chosen
    ops use, so no request waits for NVRTC; returns the module names."""
    import torch

    device = torch.device(device)
    if ops.plan is None or not ops.plan.cupy or device.type != "cuda":
        return ()  # (the CPU emulator of the kernel tests loads nothing)
    from halyard_worker.kernels.loader import _module

    index = device.index if device.index is not None else torch.cuda.current_device()
    names = tuple(dict.fromkeys(KERNEL_FILES[op] for op in ops.plan.cupy if op in KERNEL_FILES))
    for name in names:
        _module(name, index)
    return names


def add_kernels_argument(parser) -> None:
    """`--kernels {auto,cupy,torch}` for a command line (the server's `serve`, benchmarks)."""
    parser.add_argument("--kernels", choices=MODES, default="auto",
                        help="hot-path ops: CUDA kernels via CuPy, the torch reference, "
                             "or auto (CuPy when a CUDA GPU, CuPy and NVRTC are present)")
