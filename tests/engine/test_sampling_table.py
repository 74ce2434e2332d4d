"""Sampling parameters live in the runner's persistent table: set when a request
joins, reset when it leaves, read by the step through its sample rows."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from halyard_worker import LLM, SamplingParams  # noqa: E402
from halyard_worker.engine.sampling_table import (  # noqa: E402
    NEUTRAL, TEMPERATURE, TOP_P, SamplingTable, sampling_values,
)


def test_rows_follow_set_clear_and_growth():
    table = SamplingTable(2, torch.device("cpu"), pin=False)
    table.set(1, sampling_values(SamplingParams(temperature=0.5, top_k=7, top_p=0.9, seed=99)))
    rows = table.rows(np.array([1, 0]), torch.tensor([1, 0]), torch.tensor([3, 0]))
    assert rows.column(TEMPERATURE).tolist() == [0.5, 1.0] and rows.top_k.tolist() == [7, 0]
    assert rows.seeds.tolist() == [99, 0] and rows.offsets.tolist() == [3, 0]
    assert rows.uses_top_k and rows.uses_top_p and not rows.uses_min_p
    table.ensure(5)
    table.set(4, sampling_values(SamplingParams(temperature=2.0, min_p=0.1)))
    rows = table.rows(np.array([4, 1]), torch.tensor([4, 1]), torch.zeros(2, dtype=torch.int64))
    assert rows.column(TEMPERATURE).tolist() == [2.0, 0.5] and rows.uses_min_p  # row 1 kept across growth
    table.clear(1)
    cleared = table.rows(np.array([1]), torch.tensor([1]), torch.zeros(1, dtype=torch.int64))
    assert tuple(cleared.floats[0].tolist()) == pytest.approx(NEUTRAL) and cleared.top_k.tolist() == [0]
    assert cleared.seeds.tolist() == [0]
    assert not (cleared.uses_top_k or cleared.uses_top_p or cleared.uses_min_p)


def test_a_value_a_tensor_cannot_hold_fails_at_intake():
    params = SamplingParams(temperature=1.0)
    object.__setattr__(params, "top_k", 2**63)  # past validation, as a validation gap would let it
    with pytest.raises(ValueError, match="Overflow"):
        sampling_values(params)


def test_the_runner_table_holds_each_running_request_and_resets_finished_rows(tiny_model):
    llm = LLM(str(tiny_model), dtype="float32")
    engine, runner = llm.engine, llm.engine.runner
    engine.add_request("hot", [5, 6, 7], SamplingParams(temperature=0.7, top_p=0.8, seed=3, max_tokens=3))
    engine.add_request("plain", [8, 9], SamplingParams(temperature=0, max_tokens=6))
    engine.step()
    hot = runner.batch.row_of["hot"]
    assert runner.sampling.floats_np[hot, TEMPERATURE] == pytest.approx(0.7)
    assert runner.sampling.floats_np[hot, TOP_P] == pytest.approx(0.8)
    while engine.has_unfinished():
        engine.step()
    assert tuple(runner.sampling.floats_np[hot]) == pytest.approx(NEUTRAL)


def test_sampled_tokens_do_not_depend_on_the_neighbours_parameters(tiny_model):
    llm = LLM(str(tiny_model), dtype="float32")
    seeded = SamplingParams(temperature=0.9, top_k=20, seed=11, max_tokens=8, ignore_eos=True)
    alone = llm.generate(["a seeded request"], seeded)[0].token_ids
    neighbours = [SamplingParams(temperature=1.5, top_p=0.3, min_p=0.2, seed=i, max_tokens=8) for i in range(3)]
    outs = llm.generate(["a seeded request", "x", "y y", "z z z"], [seeded] + neighbours)
    assert outs[0].token_ids == alone
