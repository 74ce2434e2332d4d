"""The async scraper against real HTTP servers: good, slow and dead pods."""
from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from halyard_operator.signals.scraper import ScrapeTarget, scrape_into
from halyard_operator.signals.window import DeploymentWindow


async def _serve(handler):
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/metrics"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_scrape_marks_slow_and_dead_pods_stale(worker_metrics):
    w = worker_metrics()
    w.gauges(running=2, waiting=0, kv=0.25)

    async def good(_request):
        return web.Response(text=w.text(), content_type="text/plain")

    async def slow(_request):
        await asyncio.sleep(1.5)
        return web.Response(text=w.text())

    good_runner, good_url = await _serve(good)
    slow_runner, slow_url = await _serve(slow)
    try:
        window = DeploymentWindow(window_s=60, stale_after_s=30)
        targets = [ScrapeTarget("pod-good", good_url), ScrapeTarget("pod-slow", slow_url),
                   ScrapeTarget("pod-dead", f"http://127.0.0.1:{_free_port()}/metrics")]
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await scrape_into(window, targets, now=100.0, timeout_s=0.5, concurrency=2)
        assert loop.time() - started < 1.4  # the slow pod does not hold the others up
        errors = {r.pod: r.error for r in results}
        assert errors["pod-good"] is None
        assert errors["pod-slow"] and errors["pod-dead"]
        m = window.metrics(100.0)
        assert m.pods_total == 3 and m.pods_stale == 2 and not m.stale
        assert m.running == 2
    finally:
        await good_runner.cleanup()
        await slow_runner.cleanup()


async def test_non_200_is_a_failed_scrape():
    async def broken(_request):
        return web.Response(status=503, text="starting")

    runner, url = await _serve(broken)
    try:
        window = DeploymentWindow()
        results = await scrape_into(window, [ScrapeTarget("p", url)], now=1.0)
        assert results[0].error == "HTTP 503"
        assert window.metrics(1.0).stale
    finally:
        await runner.cleanup()


def test_promql_covers_every_metric():
    from halyard_operator.signals.promapi import queries

    q = queries('namespace="team-a",pod=~"chat-8b-.*"', 60)
    assert "histogram_quantile(0.95" in q["ttft_p95_s"] and "[60s]" in q["ttft_p95_s"]
    assert q["queue"] == 'sum(vllm:num_requests_waiting{namespace="team-a",pod=~"chat-8b-.*"})'
    assert q["prefill_budget_use"] == (
        'sum(increase(halyard:prefill_tokens_total{namespace="team-a",pod=~"chat-8b-.*"}[60s])) / '
        'sum(increase(halyard:prefill_budget_tokens_total{namespace="team-a",pod=~"chat-8b-.*"}[60s]))')


async def test_prometheus_api_source_reads_instant_vectors():
    from halyard_operator.signals.promapi import fetch_metrics

    async def query(request):
        q = request.query["query"]
        value = "0.42" if "time_to_first_token" in q else ("NaN" if "e2e" in q else "3")
        value = "0.87" if "prefill_budget" in q else value
        return web.json_response({"status": "success", "data": {"resultType": "vector",
                                  "result": [{"metric": {}, "value": [0, value]}]}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        m = await fetch_metrics(f"http://127.0.0.1:{port}", 'pod=~"x-.*"')
        assert m.ttft_p95_s == pytest.approx(0.42) and m.e2e_p95_s is None
        assert m.queue == 3 and m.pods_total == 3
        assert m.prefill_budget_use == pytest.approx(0.87)
    finally:
        await runner.cleanup()


async def test_hub_scrapes_ready_pods_at_their_ip_and_reports_loads(worker_metrics):
    from halyard_operator.observe import read_pod
    from halyard_operator.signals.hub import MetricsHub, scrape_targets

    w = worker_metrics()
    w.gauges(running=3, waiting=2, kv=0.5)

    async def good(_request):
        return web.Response(text=w.text(), content_type="text/plain")

    runner, url = await _serve(good)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    ready = {"type": "Ready", "status": "True"}
    pods = [{"metadata": {"name": "a"}, "status": {"podIP": "127.0.0.1", "conditions": [ready]}},
            {"metadata": {"name": "starting"}, "status": {"podIP": "127.0.0.2", "conditions": []}},
            {"metadata": {"name": "gone", "deletionTimestamp": "t"},
             "status": {"podIP": "127.0.0.3", "conditions": [ready]}}]
    try:
        targets = scrape_targets([read_pod(p, now=0.0) for p in pods], port, None)
        assert [t.pod for t in targets] == ["a"]  # not Ready or being deleted: not scraped
        hub = MetricsHub(window_s=60)
        assert hub.metrics("ns/x") is None
        await hub.refresh("ns/x", targets, selector="")
        m = hub.metrics("ns/x")
        assert m.running == 3 and m.queue == 2 and m.pods_total == 1 and not m.stale
        assert hub.loads("ns/x") == {"a": 5.0}
        hub.forget("ns/x")
        assert hub.metrics("ns/x") is None
    finally:
        await runner.cleanup()
