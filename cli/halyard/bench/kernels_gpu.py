"""The GPU measurements of `halyard bench kernels` (imported only when a GPU is present)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from halyard.bench.kernels import ModelShape, Result, weight_bytes
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


def gemv_results(shape: ModelShape, batches: list[int], dtype, iters: int) -> list[Result]:
    out = []
    for name in ("gate_up", "down"):
        n, k = shape.linears()[name]
        w = torch.randn(n, k, dtype=dtype, device="cuda") * 0.02
        q8, s8 = reference.quantize_int8(w)
        q4, s4, z4 = reference.quantize_int4(w, 128)
        for m in batches:
            x = torch.randn(m, k, dtype=dtype, device="cuda")
            io = 2 * m * (n + k)
            label = f"{m}x{k} @ {n}x{k}"
            cases = [("bf16", "torch", lambda: F.linear(x, w)),
                     ("int8", "cupy", lambda: quant_gemm.int8_linear(x, q8, s8)),
                     ("int8", "torch", lambda: reference.int8_linear(x, q8, s8)),
                     ("int4", "cupy", lambda: quant_gemm.int4_linear(x, q4, s4, z4, 128)),
                     ("int4", "torch", lambda: reference.int4_linear(x, q4, s4, z4, 128))]
            for fmt, impl, fn in cases:
                t = seconds_per_call(fn, iters)
                out.append(Result(f"gemv_{fmt}", impl, label, weight_bytes(n, k, fmt) + io, t))
        del w, q8, s8, q4, s4, z4
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
