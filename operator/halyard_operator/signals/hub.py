"""The operator's live serving signals: one sliding window per LLMDeployment.

`refresh(key, pods)` scrapes the deployment's Ready worker pods (pod IP and
the worker port) into its window, or asks Prometheus when the operator is
configured with `prometheusUrl`; `metrics(key, now)` is what the policies
read. Kept in memory: after an operator restart the windows refill within
one window length, and until they hold two samples the autoscaler holds.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from halyard_operator.observe.types import ObservedPod
from halyard_operator.signals.promapi import fetch_metrics
from halyard_operator.signals.scraper import ScrapeTarget, scrape_into
from halyard_operator.signals.types import DeploymentMetrics
from halyard_operator.signals.window import DeploymentWindow

log = logging.getLogger(__name__)


def scrape_targets(pods: tuple[ObservedPod, ...] | list[ObservedPod], port: int,
                   model_name: str | None) -> list[ScrapeTarget]:
    """Ready pods with an IP, not being deleted -> their /metrics endpoints."""
    return [ScrapeTarget(p.name, f"http://{p.ip}:{port}/metrics", model_name)
            for p in pods if p.ready and p.ip and not p.deleting]


@dataclass
class MetricsHub:
    """Per-deployment windows (mutable, owned by the operator process)."""

    window_s: float = 60.0
    stale_after_s: float = 30.0
    prometheus_url: str | None = None
    windows: dict = field(default_factory=dict)  # "ns/name" -> DeploymentWindow
    remote: dict = field(default_factory=dict)  # "ns/name" -> DeploymentMetrics from Prometheus

    async def refresh(self, key: str, targets: list[ScrapeTarget], selector: str) -> None:
        """Take one sample of deployment `key` (never raises: failures mark pods stale)."""
        if self.prometheus_url:
            try:
                self.remote[key] = await fetch_metrics(self.prometheus_url, selector, int(self.window_s))
            except Exception as exc:  # noqa: BLE001 - a monitoring outage must not stop reconciles
                log.warning("Prometheus query for %s failed: %s", key, exc)
                self.remote.pop(key, None)
            return
        window = self.windows.setdefault(key, DeploymentWindow(self.window_s, self.stale_after_s))
        results = await scrape_into(window, targets)
        for result in results:
            if result.error:
                log.info("Scrape of pod %s (%s) failed: %s", result.pod, key, result.error)

    def metrics(self, key: str, now: float | None = None) -> DeploymentMetrics | None:
        """The window's figures, or None before the first sample."""
        if self.prometheus_url:
            return self.remote.get(key)
        window = self.windows.get(key)
        return None if window is None or not window.pods else window.metrics(time.time() if now is None else now)

    def loads(self, key: str) -> dict[str, float]:
        """Pod name -> running + waiting requests at its last good scrape."""
        window = self.windows.get(key)
        if window is None:
            return {}
        out = {}
        for pod, series in window.pods.items():
            if series.samples:
                gauges = series.samples[-1][1].gauges
                out[pod] = gauges.get("running", 0.0) + gauges.get("waiting", 0.0)
        return out

    def forget(self, key: str) -> None:
        self.windows.pop(key, None)
        self.remote.pop(key, None)
