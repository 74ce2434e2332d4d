"""Launchers of w8a16_gemm.cu and w4a16_gemm.cu: weight-only int8/int4 linear layers.

The kernels serve small decode batches (M <= TENSOR_CORE_ROWS rows); larger
batches dequantize the weight to bf16/fp16 and use torch's matmul (cuBLAS on
the tensor cores), where compute, not weight bandwidth, bounds the time. Shapes the kernels do not cover (int8 with
in % 16 != 0, int4 groups that are not a multiple of 32: small models'
fallback group sizes) also take the torch path. Scales (and zeros) are read in the activation
dtype, as the torch reference rounds them; store them in that dtype at load
to avoid a conversion per call.
"""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels import reference
from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require

# Rows above this go through the tensor cores: the layer's weight is dequantized
# to the activation dtype and multiplied by cuBLAS. The GEMV kernels re-read the
# weight once per 8-row tile, so from ~12 rows on (measured on an H100, issue 14)
# they lose to dequantize + cuBLAS; `halyard bench kernels` reports both sides
# per row count so this constant can be re-measured on each GPU generation.
TENSOR_CORE_ROWS = 8
MAX_M = TENSOR_CORE_ROWS
ROWS_PER_BLOCK = 16  # WARPS * ROWS in the .cu files


def _batch_tile(m: int) -> int:
    return 1 if m == 1 else 2 if m == 2 else 4 if m <= 4 else 8


def _as(t, dtype):
    return None if t is None else t.to(dtype).contiguous()


def _check_x(name: str, x: torch.Tensor, k: int, bias, n: int) -> None:
    require(x.is_contiguous() and x.shape[-1] == k,
            f"{name}: x must be a contiguous tensor [T, {k}], got {tuple(x.shape)}")
    require(bias is None or bias.shape == (n,), f"{name}: bias must be [{n}]")


def _gemm(kernel_file: str, prefix: str, x, w, extra: tuple, n: int, k: int, bias, tail=()) -> torch.Tensor:
    """Launch `<prefix>_<dtype>_m<tile>`(x, w, *extra, bias, y, M, N, K, *tail)."""
    m = x.numel() // k
    y = torch.empty(*x.shape[:-1], n, dtype=x.dtype, device=x.device)
    if m:
        tile = _batch_tile(m)
        grid = (-(-m // tile), -(-n // ROWS_PER_BLOCK))
        args = (ptr(x), ptr(w), *extra, ptr(bias), ptr(y), np.int32(m), np.int32(n), np.int32(k), *tail)
        launch(kernel_file, f"{prefix}_{dtype_tag(x.dtype)}_m{tile}", x.device, grid, (128,), args)
    return y


def int8_linear(x, qweight, scales, bias=None) -> torch.Tensor:
    """y = x @ (qweight * scales)^T + bias. x: [T, in]; qweight: [out, in] int8; scales: [out]."""
    n, k = qweight.shape
    _check_x("int8_linear", x, k, bias, n)
    require(qweight.dtype == torch.int8 and qweight.is_contiguous(),
            f"int8_linear: qweight must be contiguous int8 [out, in], got {qweight.dtype}")
    require(scales.shape == (n,), f"int8_linear: scales must be [{n}], got {tuple(scales.shape)}")
    if x.numel() // k > MAX_M or k % 16:
        return reference.int8_linear(x, qweight, scales, bias)
    scales, bias = _as(scales, x.dtype), _as(bias, x.dtype)
    require(aligned16(x, qweight), "int8_linear: x and qweight must start on 16-byte boundaries")
    return _gemm("w8a16_gemm", "w8a16", x, qweight, (ptr(scales),), n, k, bias)


def int4_linear(x, packed, scales, zeros, group_size: int, bias=None) -> torch.Tensor:
    """y = x @ ((q - zeros) * scales)^T + bias. packed: [out, in/2] uint8; scales/zeros: [out, in/G]."""
    n, k = packed.shape[0], packed.shape[1] * 2
    _check_x("int4_linear", x, k, bias, n)
    require(packed.dtype == torch.uint8 and packed.is_contiguous(), "int4_linear: packed must be contiguous uint8")
    require(group_size > 0 and k % group_size == 0, f"int4_linear: group_size must divide in={k}, got {group_size}")
    require(scales.shape == (n, k // group_size) and (zeros is None or zeros.shape == scales.shape),
            f"int4_linear: scales and zeros must be [{n}, {k // group_size}], got {tuple(scales.shape)}")
    if x.numel() // k > MAX_M or group_size % 32:
        return reference.int4_linear(x, packed, scales, zeros, group_size, bias)
    scales, zeros, bias = _as(scales, x.dtype), _as(zeros, x.dtype), _as(bias, x.dtype)
    require(aligned16(x, packed), "int4_linear: x and packed must start on 16-byte boundaries")
    return _gemm("w4a16_gemm", "w4a16", x, packed, (ptr(scales), ptr(zeros)), n, k, bias,
                 tail=(np.int32(group_size),))
