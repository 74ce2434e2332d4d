"""The prefill-budget signal end to end: the worker's scheduler counts it, its
/metrics exposes it, and the operator's scraper window reads it back as
`DeploymentMetrics.prefill_budget_use` (no model, no torch)."""
from __future__ import annotations

import pytest

from halyard_operator.signals.exposition import snapshot_from_text
from halyard_operator.signals.window import DeploymentWindow
from halyard_worker.engine.block_manager import BlockManager
from halyard_worker.engine.scheduler import RunnerOutput, Scheduler, SchedulerConfig
from halyard_worker.engine.sequence import Sequence
from halyard_worker.engine.types import SamplingParams

pytest.importorskip("prometheus_client")


class Worker:
    """A scheduler with hand-made runner outputs behind the worker's real /metrics."""

    def __init__(self):
        from halyard_worker.server.metrics import EngineGauges, ServerMetrics

        self.sched = Scheduler(SchedulerConfig(64, 64, 512), BlockManager(4096, 4, False))
        s = self.sched
        self.metrics = ServerMetrics("m", 512, 8, lambda: EngineGauges(
            len(s.running), len(s.waiting), 0.0, 0, 0, 0, 0, s.prefill_tokens_total, s.prefill_budget_total))
        self.n = 0

    def run(self, steps: int, prompts_per_step: int) -> None:
        for _ in range(steps):
            for _ in range(prompts_per_step):
                self.n += 1
                self.sched.add(Sequence(str(self.n), [10 + self.n % 50] * 16, SamplingParams(max_tokens=8)))
            out = self.sched.schedule()
            done = {rid: 7 for rid, n in out.num_scheduled_tokens.items()
                    if self.sched.requests[rid].num_computed_tokens + n == self.sched.requests[rid].num_tokens}
            self.sched.update(out, RunnerOutput(done, {}))

    def text(self) -> str:
        return self.metrics.exposition().decode()


def use_over(worker: Worker, steps: int, prompts_per_step: int) -> float:
    window = DeploymentWindow(window_s=60)
    window.observe("pod", 0.0, snapshot_from_text(worker.text(), "m"))
    worker.run(steps, prompts_per_step)
    window.observe("pod", 10.0, snapshot_from_text(worker.text(), "m"))
    return window.metrics(10.0).prefill_budget_use


def test_the_operator_reads_the_workers_prefill_budget_use_rising_to_one_with_the_prompt_load():
    worker = Worker()
    idle = DeploymentWindow()
    idle.observe("pod", 0.0, snapshot_from_text(worker.text(), "m"))
    assert idle.metrics(0.0).prefill_budget_use is None  # no step yet: nothing to report
    light = use_over(worker, 40, 1)  # 16 prompt tokens a step
    heavy = use_over(worker, 40, 6)  # 96 a step: more than the 64-token budget holds
    assert 0.15 < light < 0.5
    assert heavy > 0.97


def test_a_worker_without_the_counters_reports_no_prefill_budget_use():
    text = "vllm:num_requests_running 1\nvllm:request_success_total 3\n"
    window = DeploymentWindow()
    window.observe("pod", 0.0, snapshot_from_text(text))
    window.observe("pod", 10.0, snapshot_from_text(text))
    assert window.metrics(10.0).prefill_budget_use is None
