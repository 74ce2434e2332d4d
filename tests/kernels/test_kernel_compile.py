"""Every kernel compiles with NVRTC for Ampere (sm_80) and Hopper (sm_90), no GPU needed,
and exports the entry points its launcher asks for."""
from __future__ import annotations

import pytest

from halyard_worker.kernels import nvrtc
from halyard_worker.kernels.paged_attention import HEAD_DIMS
from halyard_worker.kernels.prefill_attention import HEAD_DIMS as PREFILL_HEAD_DIMS

ARCHS = ("sm_80", "sm_90")
DTYPES = ("f16", "bf16")
TILES = (1, 2, 4, 8)

# The kernels each launcher launches, by source file.
ENTRY_POINTS = {
    "rmsnorm": [f"rms_norm_{t}" for t in DTYPES],
    "silu_mul": [f"silu_mul_{t}" for t in DTYPES],
    "rotary": [f"rotary_{t}" for t in DTYPES],
    "kv_cache": [f"write_kv_{t}" for t in DTYPES],
    "w8a16_gemm": [f"w8a16_{t}_m{m}" for t in DTYPES for m in TILES],
    "w4a16_gemm": [f"w4a16_{t}_m{m}" for t in DTYPES for m in TILES],
    "paged_attention": [f"paged_decode_{t}_d{d}" for t in DTYPES for d in HEAD_DIMS]
    + [f"paged_decode_reduce_{t}" for t in DTYPES],
    "prefill_attention": [f"prefill_attention_{t}_d{d}" for t in DTYPES for d in PREFILL_HEAD_DIMS],
}


def test_every_source_file_is_covered():
    assert sorted(p.stem for p in nvrtc.kernel_sources()) == sorted(ENTRY_POINTS)


def test_nvrtc_is_cuda_12_or_newer():
    assert nvrtc.version() >= (12, 0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_kernel_compiles_to_cubin(name, arch):
    cubin = nvrtc.compile_file(name, arch)
    assert cubin[:4] == b"\x7fELF", "NVRTC must return an ELF cubin"
    for symbol in ENTRY_POINTS[name]:
        assert symbol.encode() + b"\0" in cubin, f"{name}.cu does not export {symbol} for {arch}"


def test_source_error_is_reported_with_the_log():
    with pytest.raises(nvrtc.NvrtcError, match="broken.cu failed to compile for sm_90") as err:
        nvrtc.compile_cubin('extern "C" __global__ void k() { undefined_symbol(); }', "broken.cu", "sm_90")
    assert "undefined_symbol" in str(err.value)


def test_bf16_header_comes_from_the_nvidia_wheels():
    include = nvrtc.find_toolchain().include_dir
    assert any(opt == f"-I{include}" for opt in nvrtc.compile_options("sm_90"))


def test_site_packages_fallback_finds_the_same_toolchain():
    found = nvrtc._from_site_packages()
    assert found is not None and (nvrtc.Path(found.include_dir) / "cuda_fp16.h").exists()
    assert nvrtc.Path(found.library).name.startswith("libnvrtc.so")
