"""Compile the kernels' CUDA C to cubin with NVRTC, without a GPU or driver.

NVRTC (`libnvrtc`) ships in the nvidia wheels that the CUDA build of torch
installs, together with the CUDA headers (`cuda_fp16.h`, `cuda_bf16.h`). It
needs no driver, so the same compile path runs in CI (to prove every kernel
builds for sm_80 and sm_90) and on a GPU machine (where the cubin is loaded
through CuPy). CuPy's own compiler is not used: it needs a driver and does
not bundle `cuda_bf16.h`.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
NVRTC_SUCCESS = 0


class NvrtcError(RuntimeError):
    """NVRTC is missing or a kernel failed to compile; the message holds the log."""


@dataclass(frozen=True)
class Toolchain:
    """Where NVRTC and the CUDA headers live (absolute paths)."""

    library: str
    include_dir: str


def _from_pathfinder() -> Toolchain | None:
    try:
        from cuda import pathfinder
    except ImportError:
        return None
    try:
        lib = pathfinder.load_nvidia_dynamic_lib("nvrtc").abs_path
        include = pathfinder.find_nvidia_header_directory("cudart")
    except Exception:  # pathfinder raises several not-found types
        return None
    return Toolchain(str(lib), str(include)) if lib and include else None


def _from_site_packages() -> Toolchain | None:
    """nvidia/<pkg>/lib/libnvrtc.so.* and nvidia/<pkg>/include/cuda_bf16.h in any site dir."""
    import site
    import sys

    for root in [*site.getsitepackages(), *sys.path]:
        nvidia = Path(root) / "nvidia"
        libs = sorted(nvidia.glob("*/lib/libnvrtc.so.*")) if nvidia.is_dir() else []
        headers = sorted(nvidia.glob("*/include/cuda_bf16.h")) if nvidia.is_dir() else []
        libs = [p for p in libs if "builtins" not in p.name]
        if libs and headers:
            return Toolchain(str(libs[-1]), str(headers[-1].parent))
    return None


@functools.lru_cache(maxsize=1)
def find_toolchain() -> Toolchain:
    """Locate libnvrtc and the directory holding cuda_bf16.h in the nvidia wheels."""
    found = _from_pathfinder() or _from_site_packages()
    if found is None or not (Path(found.include_dir) / "cuda_bf16.h").exists():
        raise NvrtcError("NVRTC or the CUDA headers (cuda_bf16.h) were not found; install the CUDA build "
                         "of torch with its nvidia wheels (nvidia-cuda-nvrtc, nvidia-cuda-runtime)")
    return found


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(find_toolchain().library)
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def _check(status: int, what: str) -> None:
    if status != NVRTC_SUCCESS:
        raise NvrtcError(f"{what} failed: {_lib().nvrtcGetErrorString(status).decode()}")


def version() -> tuple[int, int]:
    """NVRTC's CUDA version, e.g. (13, 2)."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(_lib().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def compile_options(arch: str) -> list[str]:
    """NVRTC flags: real-arch cubin (`sm_80`, `sm_90`), C++17, our dir and the CUDA headers."""
    return [f"--gpu-architecture={arch}", "--std=c++17", "-default-device", "-lineinfo",
            f"-I{KERNEL_DIR}", f"-I{find_toolchain().include_dir}"]


def _read(prog: ctypes.c_void_p, size_fn, get_fn) -> bytes:
    lib, size = _lib(), ctypes.c_size_t()
    _check(getattr(lib, size_fn)(prog, ctypes.byref(size)), size_fn)
    buf = ctypes.create_string_buffer(size.value)
    _check(getattr(lib, get_fn)(prog, buf), get_fn)
    return buf.raw


def compile_cubin(source: str, name: str, arch: str) -> bytes:
    """Compile CUDA C `source` (file `name`) to a cubin for `arch`; raises NvrtcError with the log."""
    lib, prog = _lib(), ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = [o.encode() for o in compile_options(arch)]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        log = _read(prog, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog").rstrip(b"\0").decode(errors="replace")
        if status != NVRTC_SUCCESS:
            raise NvrtcError(f"{name} failed to compile for {arch}:\n{log}")
        return _read(prog, "nvrtcGetCUBINSize", "nvrtcGetCUBIN")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def kernel_sources() -> list[Path]:
    """Every kernel source file shipped with the package."""
    return sorted(KERNEL_DIR.glob("*.cu"))


def compile_file(name: str, arch: str) -> bytes:
    """Compile `kernels/<name>.cu` for `arch`."""
    path = KERNEL_DIR / f"{name}.cu"
    return compile_cubin(path.read_text(), path.name, arch)
