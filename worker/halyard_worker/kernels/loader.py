"""Load compiled kernels into CuPy and launch them on torch's current stream.

A module is compiled once per (file, GPU architecture) with NVRTC (`nvrtc.py`),
cached as a cubin on disk (`$HALYARD_KERNEL_CACHE`, default
`~/.cache/halyard/kernels`) keyed by a hash of the sources and flags, and
loaded once per device. Launches go on torch's current stream through a CuPy
`ExternalStream`, so they order with torch ops (and are captured by CUDA
graphs) without any host synchronisation. Tensor arguments are passed as raw
device pointers; torch allocates every output.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from halyard_worker.kernels import nvrtc


def require(ok: bool, message: str) -> None:
    """Argument check before a launch: a bad call raises instead of corrupting memory."""
    if not ok:
        raise ValueError(message)


def dtype_tag(dtype) -> str:
    """'f16' / 'bf16': the suffix of a kernel's exported name."""
    import torch

    tags = {torch.float16: "f16", torch.bfloat16: "bf16"}
    require(dtype in tags, f"kernels take float16 or bfloat16 tensors, got {dtype}")
    return tags[dtype]


def ptr(t) -> np.uint64:
    """A tensor's device pointer as a kernel argument (None -> null)."""
    return np.uint64(0 if t is None else t.data_ptr())


def aligned16(*tensors) -> bool:
    """True when every tensor's data starts on a 16-byte boundary (128-bit loads)."""
    return all(t is None or t.data_ptr() % 16 == 0 for t in tensors)


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "halyard" / "kernels"
    path = Path(os.environ.get("HALYARD_KERNEL_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cubin_file(name: str, arch: str) -> Path:
    """Compile `<name>.cu` for `arch` unless a cubin for the same sources and flags is cached."""
    key = hashlib.sha256()
    for part in [nvrtc.KERNEL_DIR / f"{name}.cu", *sorted(nvrtc.KERNEL_DIR.glob("*.cuh"))]:
        key.update(part.read_bytes())
    key.update(" ".join(nvrtc.compile_options(arch)).encode() + repr(nvrtc.version()).encode())
    path = _cache_dir() / f"{name}-{arch}-{key.hexdigest()[:16]}.cubin"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(nvrtc.compile_file(name, arch))
        tmp.replace(path)  # atomic: concurrent workers never load a half-written file
    return path


@functools.lru_cache(maxsize=None)
def _module(name: str, device_index: int):
    import cupy
    import torch

    major, minor = torch.cuda.get_device_capability(device_index)
    with cupy.cuda.Device(device_index):
        return cupy.RawModule(path=str(cubin_file(name, f"sm_{major}{minor}")))


@functools.lru_cache(maxsize=None)
def kernel(name: str, function: str, device_index: int):
    """The CuPy kernel `function` of `<name>.cu` on GPU `device_index` (loaded once)."""
    import cupy

    with cupy.cuda.Device(device_index):
        return _module(name, device_index).get_function(function)


def launch(name: str, function: str, device, grid, block, args, shared_mem: int = 0) -> None:
    """Launch on torch's current stream of `device`; never synchronises the host."""
    require(device.type == "cuda", f"{function}: the CuPy kernels need CUDA tensors, got device {device}")
    import cupy
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    fn = kernel(name, function, index)
    stream = torch.cuda.current_stream(index).cuda_stream
    with cupy.cuda.Device(index), cupy.cuda.ExternalStream(stream, index):
        fn(tuple(grid), tuple(block), tuple(args), shared_mem=shared_mem)
