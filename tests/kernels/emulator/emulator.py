"""Run the kernels' CUDA C on the CPU (tests only): compile each `.cu` with the host
C++ compiler against `cuda_emu.h`, then stand in for `loader.launch` so the real
launchers (checks, allocation, arguments) drive the real kernel source on CPU tensors.
"""
from __future__ import annotations

import collections
import ctypes
import functools
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from halyard_worker.kernels import nvrtc

HERE = Path(__file__).resolve().parent
CTYPES = {np.uint64: ctypes.c_uint64, np.int64: ctypes.c_int64, np.int32: ctypes.c_int32,
          np.float32: ctypes.c_float}
LAUNCHER_MODULES = ("rmsnorm", "silu_mul", "rotary", "kv_cache", "paged_attention", "prefill_attention", "quant_gemm")
BLOCK_TIMEOUT_S = 60
LAUNCHED: collections.Counter = collections.Counter()  # kernel function name -> launches


@functools.lru_cache(maxsize=None)
def build(name: str) -> ctypes.CDLL:
    """`kernels/<name>.cu` compiled for the host as a shared library."""
    out = Path(tempfile.mkdtemp(prefix="halyard-emu-"))
    source = (nvrtc.KERNEL_DIR / f"{name}.cu").read_text().replace("extern __shared__", "extern")
    (out / f"{name}.cpp").write_text(source)
    cmd = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w", f"-I{HERE}",
           f"-I{nvrtc.KERNEL_DIR}", "-include", str(HERE / "cuda_emu.h"), str(out / f"{name}.cpp"),
           "-o", str(out / f"{name}.so")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(out / f"{name}.so"))


def launch(name, function, device, grid, block, args, shared_mem=0) -> None:
    """Run every block of `function` in turn, one OS thread per CUDA thread."""
    lib = build(name)
    LAUNCHED[function] += 1
    fn = getattr(lib, function)
    fn.restype = None
    fn.argtypes = [CTYPES[type(a)] for a in args]
    values = [a.item() for a in args]
    gx, gy, gz = (tuple(grid) + (1, 1))[:3]
    threads = block[0]
    assert threads % 32 == 0 and threads <= 1024, "block size must be whole warps"
    pool = _pool(threads)
    for bz in range(gz):
        for by in range(gy):
            for bx in range(gx):
                lib.emu_begin_block(bx, by, bz, gx, gy, gz, threads)
                pool.run(lib, fn, values, (bx, by, bz))
                lib.emu_end_block()


class _Pool:
    """`threads` persistent OS threads that run one block per `run()`."""

    def __init__(self, threads: int):
        self.start, self.done = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
        self.job = None
        for tx in range(threads):
            threading.Thread(target=self._work, args=(tx,), daemon=True).start()

    def _work(self, tx: int) -> None:
        while True:
            self.start.wait()
            lib, fn, values = self.job
            lib.emu_set_thread(tx)
            fn(*values)
            self.done.wait()

    def run(self, lib, fn, values, where) -> None:
        self.job = (lib, fn, values)
        self.start.wait()
        try:
            self.done.wait(BLOCK_TIMEOUT_S)
        except threading.BrokenBarrierError:
            _pool.cache_clear()  # its threads are stuck for good
            raise AssertionError(f"block {where} deadlocked: a barrier or shuffle is not reached by every thread")


@functools.lru_cache(maxsize=None)
def _pool(threads: int) -> _Pool:
    return _Pool(threads)


def install(monkeypatch) -> None:
    """Route every launcher's `launch` to the emulator for one test."""
    import importlib

    for module in LAUNCHER_MODULES:
        monkeypatch.setattr(importlib.import_module(f"halyard_worker.kernels.{module}"), "launch", launch)
