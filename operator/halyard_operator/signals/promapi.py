"""Optional source for large clusters: the Prometheus HTTP API instead of scraping pods.

Builds PromQL for one deployment (pods selected by a label matcher, e.g.
`namespace="team-a",pod=~"chat-8b-.*"`) and turns `/api/v1/query` answers
into a DeploymentMetrics. Prometheus already handles counter resets
(`increase`, `rate`) and bucket deltas (`histogram_quantile` over `rate`).
"""
from __future__ import annotations

import asyncio
import time

import aiohttp

from halyard_operator.signals.types import DeploymentMetrics


def queries(selector: str, window_s: int) -> dict[str, str]:
    """PromQL per DeploymentMetrics field. `selector`: label matchers without braces."""
    w = f"{int(window_s)}s"

    def p95(metric: str) -> str:
        return f"histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{selector}}}[{w}])))"

    return {
        "request_rate": f"sum(rate(vllm:request_success_total{{{selector}}}[{w}]))",
        "prompt_token_rate": f"sum(rate(vllm:prompt_tokens_total{{{selector}}}[{w}]))",
        "generation_token_rate": f"sum(rate(vllm:generation_tokens_total{{{selector}}}[{w}]))",
        "preemption_rate": f"sum(rate(vllm:num_preemptions_total{{{selector}}}[{w}]))",
        "ttft_p95_s": p95("vllm:time_to_first_token_seconds"),
        "itl_p95_s": p95("vllm:inter_token_latency_seconds"),
        "e2e_p95_s": p95("vllm:e2e_request_latency_seconds"),
        "queue": f"sum(vllm:num_requests_waiting{{{selector}}})",
        "running": f"sum(vllm:num_requests_running{{{selector}}})",
        "kv_usage": f"avg(vllm:kv_cache_usage_perc{{{selector}}})",
        "prefill_budget_use": (f"sum(increase(halyard:prefill_tokens_total{{{selector}}}[{w}])) / "
                               f"sum(increase(halyard:prefill_budget_tokens_total{{{selector}}}[{w}]))"),
        "pods_total": f"count(up{{{selector}}})",
        "pods_stale": f"count(up{{{selector}}} == 0)",
    }


def _scalar(payload: dict) -> float | None:
    """First value of an instant-vector answer; None when empty or NaN."""
    result = (payload.get("data") or {}).get("result") or []
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value


async def fetch_metrics(base_url: str, selector: str, window_s: int = 60, *, timeout_s: float = 5.0,
                        session: aiohttp.ClientSession | None = None) -> DeploymentMetrics:
    """Query Prometheus at `base_url` (e.g. http://prometheus:9090) for one deployment."""
    own = session is None
    session = session or aiohttp.ClientSession()
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        async def one(query: str):
            async with session.get(url, params={"query": query},
                                   timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                resp.raise_for_status()
                return _scalar(await resp.json())

        qs = queries(selector, window_s)
        values = dict(zip(qs, await asyncio.gather(*(one(q) for q in qs.values()))))
    finally:
        if own:
            await session.close()
    ints = {"pods_total", "pods_stale"}
    fields = {k: (int(v or 0) if k in ints else v) for k, v in values.items()}
    for key in ("request_rate", "prompt_token_rate", "generation_token_rate", "preemption_rate",
                "queue", "running", "kv_usage"):
        fields[key] = fields[key] or 0.0
    return DeploymentMetrics(at=time.time(), window_s=float(window_s), **fields)
