"""`--kernels auto` keeps ops the kernels do not cover on torch, per op, and says so."""
from __future__ import annotations

import pytest

from halyard_worker.kernels.coverage import ModelShape, plan_ops
from halyard_worker.kernels.ops import KernelOps

OPS = KernelOps.op_names()


def shape(**kw) -> ModelShape:
    base = dict(hidden_size=4096, intermediate_size=14336, num_heads=32, num_kv_heads=8, head_dim=128,
                dtype="bfloat16")
    return ModelShape(**{**base, **kw})


def test_an_8b_shape_runs_every_kernel():
    plan = plan_ops(OPS, shape(), None)
    assert plan.torch == {} and set(plan.cupy) == set(OPS)


@pytest.mark.parametrize("kw,op,words", [
    (dict(head_dim=80, hidden_size=2560, num_heads=32), "paged_attention_decode", "head dim 80"),
    (dict(num_heads=48, num_kv_heads=4), "paged_attention_decode", "GQA ratio 48/4"),
    (dict(hidden_size=4100), "rms_norm", "hidden size 4100"),
    (dict(head_dim=16, hidden_size=512), "paged_attention_prefill", "head dim 16"),
])
def test_an_uncovered_shape_moves_only_that_op_to_torch(kw, op, words):
    plan = plan_ops(OPS, shape(**kw), None)
    assert op in plan.torch and words in plan.torch[op]
    assert "rotary" in plan.cupy  # the rest still runs on the kernels
    assert words in plan.describe()


def test_float32_or_a_missing_gpu_puts_everything_on_torch_with_the_reason():
    assert plan_ops(OPS, shape(dtype="float32"), None).cupy == ()
    plan = plan_ops(OPS, shape(), "no CUDA GPU is visible to torch")
    assert plan.cupy == () and set(plan.torch) == set(OPS)
    assert "no CUDA GPU" in plan.describe()


def test_cupy_mode_refuses_a_model_the_kernels_cannot_run(monkeypatch):
    from halyard_worker.kernels import ops

    monkeypatch.setattr(ops, "cupy_missing_reason", lambda device: None)
    with pytest.raises(ValueError, match="paged_attention_decode: head dim 80"):
        ops.select_ops("cupy", "cuda", shape(head_dim=80))
    chosen = ops.select_ops("auto", "cuda", shape(head_dim=80))
    assert chosen.paged_attention_decode is ops._torch_table()["paged_attention_decode"]
    assert chosen.rms_norm is not ops._torch_table()["rms_norm"]
    assert "torch for 2 of" in chosen.name  # decode and prefill attention


def test_auto_on_cpu_names_torch_and_why():
    from halyard_worker.kernels import select_ops

    chosen = select_ops("auto", "cpu", shape())
    assert chosen.mode == "torch" and "device is 'cpu'" in chosen.describe()
