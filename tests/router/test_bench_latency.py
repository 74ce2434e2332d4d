"""`halyard bench router`'s added-latency probe: paired, order-alternating, both paths."""
from __future__ import annotations

from halyard.bench.router_latency import _probe, latency_table, summarize


def test_added_latency_is_the_median_of_per_pair_differences():
    # the worker drifts from 10 ms to 50 ms over the run; the router always adds 1 ms
    direct = [10.0, 20.0, 30.0, 40.0, 50.0]
    times = {"direct": direct, "router": [d + 1 for d in direct], "inside": [0.2] * 5,
             "ttft_direct": direct, "ttft_router": [d + 2 for d in direct]}
    out = summarize(times)
    assert out["added"]["p50_ms"] == 1.0 and out["ttft_added"]["p50_ms"] == 2.0
    assert out["pairs"] == 5
    assert "| completion: router - direct, per pair | 1.00 |" in latency_table(out)


async def test_the_probe_measures_both_paths_against_the_same_worker(workers, router):
    worker = await workers("w")
    url, _ = await router(backends=(worker.url,))
    times = await _probe(worker.url, url, pairs=4)
    assert {k: len(v) for k, v in times.items()} == dict.fromkeys(times, 4)
    assert all(v > 0 for v in times["inside"])  # only routed answers carry the router's own time
    # warm-up pairs included: each pair sends one completion and one stream down each path
    assert len(worker.bodies) == 2 * 2 * (4 + 5)
    assert sum(bool(b.get("stream")) for b in worker.bodies) == 2 * (4 + 5)
