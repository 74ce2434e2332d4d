"""`--kernels` selection and the CUDA-graph batch padding, on CPU."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.kernels import reference, select_ops  # noqa: E402
from halyard_worker.kernels.cuda_graphs import DecodeGraphs, GraphPlan  # noqa: E402
from halyard_worker.kernels.ops import KernelOps, resolve_mode  # noqa: E402


def test_auto_on_cpu_is_the_torch_reference():
    ops = select_ops("auto", "cpu")
    assert ops.mode == "torch"
    assert ops.paged_attention_decode is reference.paged_attention_decode


def test_cupy_on_cpu_says_why_and_what_to_use():
    with pytest.raises(ValueError, match="--kernels cupy cannot run: device is 'cpu'.*use --kernels torch or auto"):
        select_ops("cupy", "cpu")


def test_unknown_mode_names_the_flag():
    with pytest.raises(ValueError, match="--kernels must be one of auto, cupy, torch, got 'fast'"):
        resolve_mode("fast", "cpu")


def test_op_names_are_the_engine_op_table():
    model_ops = pytest.importorskip("halyard_worker.model.ops")
    assert KernelOps.op_names() == model_ops.OP_NAMES


def test_install_swaps_every_engine_op_and_reset_restores():
    model_ops = pytest.importorskip("halyard_worker.model.ops")
    calls = []
    fake = KernelOps("cupy", *[lambda *a, name=n, **k: calls.append(name) for n in KernelOps.op_names()])
    try:
        fake.install(model_ops)
        model_ops.silu_and_mul(torch.zeros(1, 2))
        assert calls == ["silu_and_mul"]
    finally:
        model_ops.reset()
    assert model_ops.silu_and_mul is model_ops.reference("silu_and_mul")


def test_graph_plan_pads_to_the_next_captured_size():
    plan = GraphPlan((1, 2, 4, 8, 16))
    assert [plan.padded(n) for n in (1, 3, 8, 9, 16, 17)] == [1, 4, 8, 16, 16, None]
    with pytest.raises(ValueError, match="ascending"):
        GraphPlan((4, 2))


def test_decode_graphs_need_buffers_for_the_largest_size_and_pad_values():
    plan = GraphPlan((1, 2, 4))
    with pytest.raises(ValueError, match="'positions' has 2 rows, the largest graph needs 4"):
        DecodeGraphs(lambda **k: None, {"positions": torch.zeros(2)}, {"positions": 0}, plan)
    with pytest.raises(ValueError, match=r"pad_values lacks \['slot_mapping'\]"):
        DecodeGraphs(lambda **k: None, {"slot_mapping": torch.zeros(4)}, {}, plan)


def test_uncaptured_batches_run_eagerly():
    graphs = DecodeGraphs(lambda x: x * 2, {"x": torch.zeros(4)}, {"x": 0}, GraphPlan((1, 2, 4)))
    assert torch.equal(graphs.run(x=torch.ones(3)), torch.full((3,), 2.0))  # nothing captured yet


def test_kernels_flag_defaults_to_auto_and_rejects_unknown_modes(capsys):
    import argparse

    from halyard_worker.kernels import add_kernels_argument

    parser = argparse.ArgumentParser()
    add_kernels_argument(parser)
    assert parser.parse_args([]).kernels == "auto"
    assert parser.parse_args(["--kernels", "torch"]).kernels == "torch"
    with pytest.raises(SystemExit):
        parser.parse_args(["--kernels", "triton"])
    assert "invalid choice: 'triton'" in capsys.readouterr().err


def test_importing_the_package_pulls_neither_torch_nor_cupy():
    import subprocess
    import sys

    code = "import sys, halyard_worker.kernels; print('torch' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


class ReplayAsForward:
    """Stands in for a captured graph: replay recomputes `forward` on the static buffers."""

    def __init__(self, forward, views, out):
        self.forward, self.views, self.out = forward, views, out

    def replay(self):
        self.out.copy_(self.forward(**self.views))


def test_replay_copies_the_live_batch_and_pads_the_rest():
    def forward(tables, lens):
        return tables.sum(dim=1) + lens  # [B]

    plan = GraphPlan((2, 4))
    buffers = {"tables": torch.zeros(4, 5, dtype=torch.long), "lens": torch.zeros(4, dtype=torch.long)}
    graphs = DecodeGraphs(forward, buffers, {"tables": 7, "lens": 0}, plan)
    for size in plan.batch_sizes:  # what capture() leaves behind, without CUDA
        views = {k: v[:size] for k, v in buffers.items()}
        fake = ReplayAsForward(forward, views, torch.zeros(size, dtype=torch.long))
        graphs.graphs[size] = (fake, fake.out)
    live = {"tables": torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), "lens": torch.tensor([10, 20, 30])}
    out = graphs.run(**live)
    assert out.tolist() == [1 + 2 + 3 + 7 + 7 + 10, 4 + 5 + 6 + 14 + 20, 7 + 8 + 9 + 14 + 30]
    assert buffers["tables"][3].tolist() == [7] * 5 and buffers["lens"][3] == 0  # padding row
    assert torch.equal(graphs.run(tables=torch.ones(5, 5, dtype=torch.long), lens=torch.zeros(5, dtype=torch.long)),
                       torch.full((5,), 5))  # above the largest size: eager


def test_cubins_are_cached_by_source_and_flags(tmp_path, monkeypatch):
    from halyard_worker.kernels import loader

    monkeypatch.setenv("HALYARD_KERNEL_CACHE", str(tmp_path))
    first = loader.cubin_file("silu_mul", "sm_80")
    assert first.parent == tmp_path and first.read_bytes()[:4] == b"\x7fELF"
    stamp = first.stat().st_mtime_ns
    assert loader.cubin_file("silu_mul", "sm_80") == first and first.stat().st_mtime_ns == stamp  # no recompile
    assert loader.cubin_file("silu_mul", "sm_90") != first  # per architecture
