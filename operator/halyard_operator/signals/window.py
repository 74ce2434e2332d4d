"""Per-deployment sliding windows over pod snapshots -> DeploymentMetrics.

Rates and percentiles use DELTAS between consecutive snapshots of the same
pod inside the window; a counter that went down (the process restarted)
contributes its new value (Prometheus `increase()` semantics). A pod whose
latest scrape failed, or whose last good sample is older than
`stale_after_s`, keeps its last good gauges and counts as stale.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from halyard_operator.signals.exposition import Histogram, PodSnapshot
from halyard_operator.signals.types import DeploymentMetrics


def counter_increase(values: list[float]) -> float:
    """Sum of increases along a counter series, treating drops as resets."""
    total = 0.0
    for prev, cur in zip(values, values[1:]):
        total += cur - prev if cur >= prev else cur
    return total


def histogram_increase(series: list[Histogram]) -> dict[float, float]:
    """Per-bucket cumulative-count increase over a series of one pod's histograms."""
    out: dict[float, float] = {}
    for prev, cur in zip(series, series[1:]):
        reset = cur.count < prev.count
        before = dict(prev.buckets)
        for le, count in cur.buckets:
            base = 0.0 if reset else before.get(le, 0.0)
            out[le] = out.get(le, 0.0) + max(0.0, count - base)
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Quantile from cumulative bucket counts, interpolating linearly inside a bucket
    (like PromQL histogram_quantile). None when there are no observations."""
    items = sorted(buckets.items())
    if not items or items[-1][1] <= 0:
        return None
    rank = q * items[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in items:
        if count >= rank:
            if math.isinf(le):
                return lower_le  # the highest finite bound, as PromQL does
            width = count - lower_count
            frac = 0.0 if width <= 0 else (rank - lower_count) / width
            return lower_le + (le - lower_le) * frac
        lower_le, lower_count = le, count
    return lower_le


@dataclass
class PodSeries:
    """Timestamped snapshots of one pod (mutable; owned by one DeploymentWindow)."""

    samples: deque = field(default_factory=deque)  # of (time_s, PodSnapshot)
    last_attempt_ok: bool = True


@dataclass
class DeploymentWindow:
    """Sliding window of every pod of one deployment. `window_s`: rate/percentile span."""

    window_s: float = 60.0
    stale_after_s: float = 30.0
    pods: dict = field(default_factory=dict)  # pod name -> PodSeries

    def observe(self, pod: str, at: float, snapshot: PodSnapshot | None) -> None:
        """Record a scrape; `snapshot=None` means the scrape failed (the pod turns stale)."""
        series = self.pods.setdefault(pod, PodSeries())
        series.last_attempt_ok = snapshot is not None
        if snapshot is not None:
            series.samples.append((at, snapshot))
        horizon = at - self.window_s
        while len(series.samples) > 2 and series.samples[1][0] <= horizon:
            series.samples.popleft()

    def retain(self, pods: set[str]) -> None:
        """Forget pods that no longer exist (deleted, scaled away)."""
        for name in list(self.pods):
            if name not in pods:
                del self.pods[name]

    def _stale(self, series: PodSeries, now: float) -> bool:
        return not series.last_attempt_ok or not series.samples or now - series.samples[-1][0] > self.stale_after_s

    def metrics(self, now: float) -> DeploymentMetrics:
        counters: dict[str, float] = {}
        hists: dict[str, dict[float, float]] = {}
        gauges = {"running": 0.0, "waiting": 0.0}
        kv, stale, span = [], 0, 0.0
        for series in self.pods.values():
            stale += self._stale(series, now)
            if not series.samples:
                continue
            snaps = [s for _, s in series.samples]
            span = max(span, series.samples[-1][0] - series.samples[0][0])
            for key in snaps[-1].counters:
                counters[key] = counters.get(key, 0.0) + counter_increase([s.counters.get(key, 0.0) for s in snaps])
            for key in snaps[-1].histograms:
                merged = hists.setdefault(key, {})
                for le, inc in histogram_increase([s.histograms[key] for s in snaps if key in s.histograms]).items():
                    merged[le] = merged.get(le, 0.0) + inc
            last = snaps[-1].gauges
            gauges["running"] += last.get("running", 0.0)
            gauges["waiting"] += last.get("waiting", 0.0)
            if "kv_usage" in last:
                kv.append(last["kv_usage"])
        return _assemble(now, span, counters, hists, gauges, kv, len(self.pods), stale)


def _assemble(now, span, counters, hists, gauges, kv, total, stale) -> DeploymentMetrics:
    def rate(key):
        return counters.get(key, 0.0) / span if span > 0 else 0.0

    budget = counters.get("prefill_budget", 0.0)

    return DeploymentMetrics(
        at=now, window_s=span,
        request_rate=rate("requests"), prompt_token_rate=rate("prompt_tokens"),
        generation_token_rate=rate("generation_tokens"), preemption_rate=rate("preemptions"),
        ttft_p95_s=quantile(0.95, hists.get("ttft", {})),
        itl_p95_s=quantile(0.95, hists.get("itl", {})),
        e2e_p95_s=quantile(0.95, hists.get("e2e", {})),
        queue=gauges["waiting"], running=gauges["running"],
        kv_usage=sum(kv) / len(kv) if kv else 0.0,
        prefill_budget_use=counters.get("prefill_tokens", 0.0) / budget if budget > 0 else None,
        pods_total=total, pods_stale=stale,
    )
