"""Fixtures for the scaling tests: metric bodies rendered by prometheus_client (real exposition text)."""
from __future__ import annotations

import pytest

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class WorkerMetrics:
    """A worker's vLLM-named metrics in their own registry; `text()` is its /metrics body."""

    def __init__(self, model: str = "chat-8b"):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        labels = ["model_name"]
        self.model = model
        self.running = Gauge("vllm:num_requests_running", "running", labels, registry=self.registry)
        self.waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=self.registry)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "kv", labels, registry=self.registry)
        self.success = Counter("vllm:request_success", "ok", labels + ["finished_reason"], registry=self.registry)
        self.prompt = Counter("vllm:prompt_tokens", "prompt", labels, registry=self.registry)
        self.generation = Counter("vllm:generation_tokens", "gen", labels, registry=self.registry)
        self.preempt = Counter("vllm:num_preemptions", "preempt", labels, registry=self.registry)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "ttft", labels, buckets=TTFT_BUCKETS, registry=self.registry)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "itl", labels, buckets=(0.01, 0.025, 0.05, 0.1, 0.25), registry=self.registry)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "e2e", labels, registry=self.registry)

    def serve(self, n: int, ttft: float, itl: float = 0.02, reason: str = "stop") -> None:
        """Record `n` finished requests with the given latencies."""
        for _ in range(n):
            self.success.labels(self.model, reason).inc()
            self.prompt.labels(self.model).inc(100)
            self.generation.labels(self.model).inc(50)
            self.ttft.labels(self.model).observe(ttft)
            self.itl.labels(self.model).observe(itl)
            self.e2e.labels(self.model).observe(ttft + 50 * itl)

    def gauges(self, running: float, waiting: float, kv: float) -> None:
        self.running.labels(self.model).set(running)
        self.waiting.labels(self.model).set(waiting)
        self.kv.labels(self.model).set(kv)

    def text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()


@pytest.fixture
def worker_metrics():
    pytest.importorskip("prometheus_client")
    return WorkerMetrics
