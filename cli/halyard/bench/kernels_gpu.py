"""The GPU measurements of `halyard bench kernels` (imported only when a GPU is present)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from halyard.bench.kernels import ModelShape, Result, weight_bytes, weight_copies
from halyard_worker.kernels import paged_attention, quant_gemm, reference


def seconds_per_call(fn, iters: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean time of `iters` back-to-back calls (CUDA events)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / iters)
    return sorted(times)[len(times) // 2]


def copy_bandwidth(iters: int) -> float:
    """Device-to-device copy bandwidth (bytes read + written per second) over 1 GiB."""
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return 2 * src.numel() / seconds_per_call(lambda: dst.copy_(src), iters)


def rotating(fn, copies: list[tuple]):
    """A call of `fn(*copies[i])`, i advancing every call (a different weight each time)."""
    state = {"i": 0}

    def call():
        state["i"] = (state["i"] + 1) % len(copies)
        return fn(*copies[state["i"]])

    return call


def weight_sets(n: int, k: int, dtype, l2_bytes: int) -> dict[str, list[tuple]]:
    """Per format, enough random weights [n, k] (quantized for int8/int4) to span twice the L2."""
    sets: dict[str, list[tuple]] = {}
    for fmt in ("bf16", "int8", "int4"):
        sets[fmt] = []
        for _ in range(weight_copies(weight_bytes(n, k, fmt), l2_bytes)):
            w = torch.randn(n, k, dtype=dtype, device="cuda") * 0.02
            sets[fmt].append((w,) if fmt == "bf16" else reference.quantize_int8(w) if fmt == "int8"
                             else reference.quantize_int4(w, 128))
    return sets


def gemv_results(shape: ModelShape, batches: list[int], dtype, iters: int) -> list[Result]:
    out = []
    l2 = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
    for name, (n, k) in shape.linears().items():
        sets = weight_sets(n, k, dtype, l2)
        for m in batches:
            x = torch.randn(m, k, dtype=dtype, device="cuda")
            io = 2 * m * (n + k)
            label = f"{m}x{k} @ {n}x{k} ({name})"
            cases = [("bf16", "torch", lambda w: F.linear(x, w)),
                     ("int8", "cupy", lambda q, s: quant_gemm.int8_linear(x, q, s)),
                     ("int8", "torch", lambda q, s: reference.int8_linear(x, q, s)),
                     ("int4", "cupy", lambda q, s, z: quant_gemm.int4_linear(x, q, s, z, 128)),
                     ("int4", "torch", lambda q, s, z: reference.int4_linear(x, q, s, z, 128))]
            for fmt, impl, fn in cases:
                t = seconds_per_call(rotating(fn, sets[fmt]), iters)
                out.append(Result(f"gemv_{fmt}", impl, label, weight_bytes(n, k, fmt) + io, t))
        del sets
    return out


def decode_attention_results(shape: ModelShape, seqs: int, context: int, dtype, iters: int) -> list[Result]:
    block = 16
    mb = -(-context // block)
    kc = torch.randn(seqs * mb, block, shape.kv_heads, shape.head_dim, dtype=dtype, device="cuda")
    vc = torch.randn_like(kc)
    tables = torch.randperm(seqs * mb, device="cuda").reshape(seqs, mb)
    lens = torch.full((seqs,), context, dtype=torch.int64, device="cuda")
    q = torch.randn(seqs, shape.heads, shape.head_dim, dtype=dtype, device="cuda")
    scale = 1 / math.sqrt(shape.head_dim)
    kv_bytes = 2 * seqs * context * shape.kv_heads * shape.head_dim * kc.element_size()
    label = f"{seqs} seqs x {context} tok"
    out = []
    for impl, fn in (("cupy", lambda: paged_attention.paged_attention_decode(q, kc, vc, tables, lens, scale)),
                     ("torch", lambda: reference.paged_attention_decode(q, kc, vc, tables, lens, scale))):
        out.append(Result("paged_decode", impl, label, kv_bytes, seconds_per_call(fn, max(3, iters // 5))))
    return out


def measure_all(args, shape: ModelShape, dtype) -> tuple[list[Result], float]:
    copy_bw = copy_bandwidth(args.iters)
    results = gemv_results(shape, args.batch, dtype, args.iters)
    results += decode_attention_results(shape, args.seqs, args.context, dtype, args.iters)
    return results, copy_bw
