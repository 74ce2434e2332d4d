"""`halyard bench kernels`: refuses without a GPU; on a GPU, reports every figure."""
from __future__ import annotations

import json

import pytest

from kernel_helpers import cuda_ready, requires_gpu

from halyard.cli.main import main
from halyard.bench.kernels import ModelShape, decode_bytes_per_token, weight_bytes, weight_copies


@pytest.mark.skipif(cuda_ready(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_fails(capsys):
    assert main(["bench", "kernels"]) == 2
    assert "a CUDA GPU is required" in capsys.readouterr().err


def test_llama3_8b_decode_reads_15_gb_in_bf16_and_less_when_quantized():
    shape = ModelShape()
    bf16, int8, int4 = (decode_bytes_per_token(shape, f) for f in ("bf16", "int8", "int4"))
    assert 14.9e9 < bf16 < 15.1e9  # 7.5 B linear parameters incl. lm_head, 2 bytes each
    assert int4 < int8 < bf16
    assert weight_bytes(4096, 4096, "int4") == 4096 * 2048 + 4 * 4096 * 32  # packed + bf16 scales/zeros


def test_each_gemv_rotates_over_enough_weights_to_miss_l2():
    l2 = 50 * 2**20  # an H100's L2
    o_int4 = weight_bytes(*ModelShape().linears()["o"], "int4")  # ~8.4 MB: would stay in L2
    assert weight_copies(o_int4, l2) * o_int4 >= 2 * l2
    gate_up_bf16 = weight_bytes(*ModelShape().linears()["gate_up"], "bf16")  # 235 MB: larger than L2 alone
    assert weight_copies(gate_up_bf16, l2) == 1
    assert set(ModelShape().linears()) == {"qkv", "o", "gate_up", "down"}


@pytest.mark.bench
@pytest.mark.gpu
@requires_gpu
def test_bench_reports_every_kernel_as_a_fraction_of_copy_bandwidth(tmp_path, capsys):
    out = tmp_path / "kernels.json"
    assert main(["bench", "kernels", "--iters", "5", "--batch", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["copy_bandwidth"] > 0
    names = {(r["name"], r["impl"]) for r in data["results"]}
    assert {("gemv_bf16", "torch"), ("gemv_int8", "cupy"), ("gemv_int4", "cupy"), ("paged_decode", "cupy")} <= names
    assert {r["shape"].rsplit("(", 1)[1].rstrip(")") for r in data["results"] if r["name"] == "gemv_int4"} == {
        "qkv", "o", "gate_up", "down"}
    assert "projected batch-1 decode, int4" in capsys.readouterr().out
