"""`halyard bench kernels`: CUDA kernel bandwidth against the torch reference (GPU).

Measures device copy bandwidth first, then weight-only GEMV (bf16 via torch's
matmul, int8 and int4 via the CuPy kernels and via the torch reference) on
every linear of a Llama-3-8B layer (qkv, o, gate_up, down), rotating over
enough copies of each weight to exceed the L2 cache (`weight_copies`), so a
figure is DRAM bandwidth, not one weight re-read from L2; and paged decode
attention; each reported as a fraction of the copy bandwidth. Figures are printed (and written as JSON with --json);
nothing here asserts a speed. Without a CUDA GPU it says so and exits 2.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelShape:
    """Decoder shape whose linears the GEMVs use (defaults: Llama-3-8B)."""

    hidden: int = 4096
    intermediate: int = 14336
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    layers: int = 32
    vocab: int = 128256

    def linears(self) -> dict[str, tuple[int, int]]:
        """[out, in] of each linear in one layer (q/k/v and gate/up merged)."""
        qkv = (self.heads + 2 * self.kv_heads) * self.head_dim
        return {"qkv": (qkv, self.hidden), "o": (self.hidden, self.heads * self.head_dim),
                "gate_up": (2 * self.intermediate, self.hidden), "down": (self.hidden, self.intermediate)}


@dataclass(frozen=True)
class Result:
    """One measurement: `bytes` moved per call, `seconds` per call (median of runs)."""

    name: str
    impl: str
    shape: str
    bytes: int
    seconds: float

    @property
    def bandwidth(self) -> float:
        return self.bytes / self.seconds


BITS = {"bf16": 16, "int8": 8, "int4": 4}


def weight_bytes(out_features: int, in_features: int, fmt: str, group: int = 128) -> int:
    """Bytes a decode step reads for one linear: weights plus int8/int4 scales (and int4 zeros)."""
    body = out_features * in_features * BITS[fmt] // 8
    if fmt == "int8":
        return body + 2 * out_features
    if fmt == "int4":
        return body + 2 * 2 * out_features * (in_features // group)
    return body


def weight_copies(bytes_per_copy: int, l2_bytes: int, factor: int = 2) -> int:
    """How many copies of one weight a GEMV measurement rotates over so that
    each call reads its weight from DRAM, not from the previous call's L2
    lines: enough to span `factor` times the L2 cache."""
    return max(1, -(-factor * l2_bytes // bytes_per_copy))


def decode_bytes_per_token(shape: ModelShape, fmt: str) -> int:
    """Weight bytes one batch-1 decode step streams (layers in `fmt`, lm_head in bf16)."""
    per_layer = sum(weight_bytes(o, i, fmt) for o, i in shape.linears().values())
    return shape.layers * per_layer + weight_bytes(shape.vocab, shape.hidden, "bf16")


def add_arguments(parser) -> None:
    parser.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    parser.add_argument("--iters", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64], help="GEMV batch sizes")
    parser.add_argument("--seqs", type=int, default=64, help="decode attention: sequences")
    parser.add_argument("--context", type=int, default=2048, help="decode attention: tokens per sequence")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def run(args) -> int:
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        print("halyard bench kernels: a CUDA GPU is required (torch sees none); "
              "no kernel figures can be measured on this machine", file=sys.stderr)
        return 2
    from halyard_worker.kernels.ops import cupy_missing_reason

    reason = cupy_missing_reason("cuda")
    if reason:
        print(f"halyard bench kernels: the CuPy kernels cannot run: {reason}", file=sys.stderr)
        return 2
    from halyard.bench import kernels_gpu

    results, copy_bw = kernels_gpu.measure_all(args, ModelShape(), getattr(torch, args.dtype))
    report(results, copy_bw, ModelShape())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"copy_bandwidth": copy_bw, "results": [asdict(r) | {"bandwidth": r.bandwidth} for r in results]},
                      fh, indent=2)
    return 0


def report(results: list[Result], copy_bw: float, shape: ModelShape) -> None:
    """Print one row per measurement and the batch-1 decode projection per weight format."""
    print(f"device copy bandwidth: {copy_bw / 1e9:,.0f} GB/s")
    print(f"{'kernel':<18}{'impl':<8}{'shape':<28}{'time us':>10}{'GB/s':>9}{'of copy':>9}")
    for r in results:
        print(f"{r.name:<18}{r.impl:<8}{r.shape:<28}{r.seconds * 1e6:>10.1f}{r.bandwidth / 1e9:>9,.0f}"
              f"{r.bandwidth / copy_bw:>9.1%}")
    for fmt, impl in (("bf16", "torch"), ("int8", "cupy"), ("int4", "cupy")):
        gemv = [r for r in results if r.name == f"gemv_{fmt}" and r.impl == impl and r.shape.startswith("1x")]
        if gemv:
            bw = sum(r.bytes for r in gemv) / sum(r.seconds for r in gemv)
            tok_s = bw / decode_bytes_per_token(shape, fmt)
            print(f"projected batch-1 decode, {fmt} weights at measured GEMV bandwidth: {tok_s:,.0f} tok/s")
