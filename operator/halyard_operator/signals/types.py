"""The metrics snapshot that feeds the policies and `status.metrics`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeploymentMetrics:
    """One deployment's serving signals over a sliding window ending at `at`.

    Units: seconds, requests/s, tokens/s; `kv_usage` is a 0..1 fraction.
    Rates and percentiles come from counter/histogram DELTAS inside the window
    (counter resets handled). A latency percentile is None when no request
    finished in the window. `queue`, `running`, `kv_usage` are the latest
    gauges summed (queue, running) or averaged (kv) over reporting pods.

    Invariant: `pods_stale <= pods_total`. A pod that could not be scraped
    keeps its last good sample (flagged stale), never zeros; `stale` is True
    when no pod has a fresh sample, and then the policies hold their decision.
    """

    at: float
    window_s: float
    request_rate: float = 0.0  # finished requests/s (vllm:request_success_total)
    prompt_token_rate: float = 0.0
    generation_token_rate: float = 0.0
    ttft_p95_s: float | None = None
    itl_p95_s: float | None = None
    e2e_p95_s: float | None = None
    queue: float = 0.0  # requests waiting, all pods
    running: float = 0.0  # requests running, all pods
    kv_usage: float = 0.0  # mean KV cache usage over pods, 0..1
    preemption_rate: float = 0.0  # engine preemptions/s
    # share of the engines' prefill budget in use (prefill tokens scheduled / each step's token
    # budget minus its decodes), 0..1: 1 when prefill fills every step; None when not reported
    prefill_budget_use: float | None = None
    pods_total: int = 0
    pods_stale: int = 0

    @property
    def stale(self) -> bool:
        return self.pods_total == 0 or self.pods_stale >= self.pods_total

    def to_status(self) -> dict:
        """The `status.metrics` block (strings with units, like kubectl prints)."""

        def ms(value: float | None) -> str | None:
            return None if value is None else f"{value * 1000:.0f}ms"

        return {
            "ttftP95": ms(self.ttft_p95_s),
            "itlP95": ms(self.itl_p95_s),
            "queue": round(self.queue, 2),
            "kvCacheUsage": round(self.kv_usage, 3),
            "requestRate": round(self.request_rate, 3),
            "stalePods": self.pods_stale,
        }
