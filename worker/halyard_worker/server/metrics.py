"""Prometheus metrics with vLLM's names, semantics and bucket boundaries.

One `CollectorRegistry` per app (tests run several servers in one process).
Request-level series (latency histograms, token counters) are observed by the
server as outputs stream; engine-level series (running, waiting, KV usage,
preemptions, prefix cache) are read from `AsyncEngine.stats()` at scrape time
by a custom collector, so they are never stale. prometheus-client appends
`_total` to counters: the names below are given without it and the exposed
names are exactly vLLM's (`vllm:prompt_tokens_total`, ...).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

prometheus_client.disable_created_metrics()  # vLLM exposes no `_created` series

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
               1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
               40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


def buckets_1_2_5(max_value: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to and including the first value <= max_value."""
    out, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return out
            out.append(value)
        exponent += 1


@dataclass(frozen=True)
class EngineGauges:
    """What the collector needs from an engine stats snapshot (counts; KV usage 0..1)."""

    running: int
    waiting: int
    kv_usage: float
    kv_capacity_tokens: int
    preemptions: int
    prefix_queries: int
    prefix_hits: int
    prefill_tokens: int = 0  # scheduled for prefill, cumulative
    prefill_budget_tokens: int = 0  # each step's token budget minus its decode tokens, cumulative


class _EngineCollector:
    """Reads engine stats at scrape time; `read` returns EngineGauges."""

    def __init__(self, model_name: str, read: Callable[[], EngineGauges]):
        self._labels = [model_name]
        self._read = read

    def collect(self):
        s = self._read()
        gauges = [
            ("vllm:num_requests_running", "Number of requests in model execution batches.", s.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kv_usage),
            ("halyard:kv_cache_capacity_tokens", "Tokens the KV cache can hold.", s.kv_capacity_tokens),
        ]
        for name, doc, value in gauges:
            family = GaugeMetricFamily(name, doc, labels=["model_name"])
            family.add_metric(self._labels, value)
            yield family
        counters = [
            ("vllm:num_preemptions", "Cumulative number of preemption from the engine.", s.preemptions),
            ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
             s.prefix_queries),
            ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
             s.prefix_hits),
            ("halyard:prefill_tokens", "Tokens scheduled for prefill (prompt chunks and recomputation).",
             s.prefill_tokens),
            ("halyard:prefill_budget_tokens", "Per engine step, the token budget left after its decodes, "
             "summed; prefill_tokens over this is the share of the prefill budget in use.",
             s.prefill_budget_tokens),
        ]
        for name, doc, value in counters:
            family = CounterMetricFamily(name, doc, labels=["model_name"])
            family.add_metric(self._labels, value)
            yield family


class ServerMetrics:
    """All series of one worker, labelled `model_name`."""

    def __init__(self, model_name: str, max_model_len: int, max_queue: int,
                 read_engine: Callable[[], EngineGauges]):
        self.registry = CollectorRegistry()
        labels, reg = ["model_name"], self.registry
        self._label = model_name
        hist = lambda name, doc, buckets: Histogram(  # noqa: E731
            name, doc, labels, buckets=buckets, registry=reg).labels(model_name)
        self.ttft = hist("vllm:time_to_first_token_seconds",
                         "Histogram of time to first token in seconds.", TTFT_BUCKETS)
        self.itl = hist("vllm:inter_token_latency_seconds",
                        "Histogram of inter-token latency in seconds.", ITL_BUCKETS)
        self.e2e = hist("vllm:e2e_request_latency_seconds",
                        "Histogram of e2e request latency in seconds.", E2E_BUCKETS)
        token_buckets = buckets_1_2_5(max_model_len)
        self.request_prompt_tokens = hist("vllm:request_prompt_tokens",
                                          "Number of prefill tokens processed.", token_buckets)
        self.request_generation_tokens = hist("vllm:request_generation_tokens",
                                              "Number of generation tokens processed.", token_buckets)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.",
                                     labels, registry=reg).labels(model_name)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                                         labels, registry=reg).labels(model_name)
        self._success = Counter("vllm:request_success", "Count of successfully processed requests.",
                                labels + ["finished_reason"], registry=reg)
        self._rejected = Counter("halyard:requests_rejected", "Requests refused before reaching the engine.",
                                 labels + ["reason"], registry=reg)
        self._engine_errors = Counter("halyard:engine_errors", "Requests that failed inside the engine.",
                                      labels, registry=reg).labels(model_name)
        self._server_errors = Counter("halyard:http_server_errors", "HTTP responses with a 5xx status.",
                                      labels + ["status"], registry=reg)
        self.draining = Gauge("halyard:draining", "1 while the worker drains after SIGTERM.",
                              labels, registry=reg).labels(model_name)
        Gauge("halyard:admission_queue_limit", "Requests that may wait beyond the running batch.",
              labels, registry=reg).labels(model_name).set(max_queue)
        reg.register(_EngineCollector(model_name, read_engine))

    def finished(self, reason: str) -> None:
        self._success.labels(self._label, reason).inc()

    def rejected(self, reason: str) -> None:
        self._rejected.labels(self._label, reason).inc()

    def engine_error(self) -> None:
        self._engine_errors.inc()

    def server_error(self, status: int) -> None:
        self._server_errors.labels(self._label, str(status)).inc()

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


@dataclass
class RequestTimer:
    """Per-request timing; times are `time.monotonic()` seconds.

    ITL: a snapshot carrying k new tokens after a gap g observes g/k k times,
    so the ITL count equals generated tokens minus one per request.
    """

    metrics: ServerMetrics
    arrival: float = field(default_factory=time.monotonic)
    first: float | None = None
    last: float | None = None
    prompt_tokens: int = 0
    generated: int = 0

    def on_tokens(self, n_new: int, prompt_tokens: int) -> None:
        if n_new <= 0:
            return
        now = time.monotonic()
        m = self.metrics
        if self.first is None:
            self.first = self.last = now
            self.prompt_tokens = prompt_tokens
            m.ttft.observe(now - self.arrival)
            m.prompt_tokens.inc(prompt_tokens)
            n_gaps = n_new - 1
        else:
            n_gaps = n_new
        if n_gaps > 0:
            gap = (now - self.last) / n_gaps
            for _ in range(n_gaps):
                m.itl.observe(gap)
        self.last = now
        self.generated += n_new
        m.generation_tokens.inc(n_new)

    def on_finish(self, reason: str) -> None:
        m = self.metrics
        m.e2e.observe(time.monotonic() - self.arrival)
        m.request_prompt_tokens.observe(self.prompt_tokens)
        m.request_generation_tokens.observe(self.generated)
        m.finished(reason)
