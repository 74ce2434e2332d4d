"""The router's added latency, side by side with the worker it fronts.

Small requests go to one worker directly and through a `halyard-router` in
front of it, in pairs whose order alternates (direct first, then router
first) so that neither path always follows the other. Two probes per pair:
a non-streaming completion of one token (end-to-end time, and the router's
own time from `X-Halyard-Router-Ms`) and a streamed one timed by
`halyard bench serve`'s client (TTFT, vLLM's definition). The added latency
is the median (and p99) of the per-pair differences router - direct: the
two requests of a pair run back to back on the same idle worker, so the
worker's drift over the run cancels out, which a difference of two
separately taken medians does not do on a busy machine.
"""
from __future__ import annotations

import argparse
import asyncio
import time

WARMUP = 5
PROBE = {"model": "smollm2", "prompt": "Hi", "max_tokens": 1, "temperature": 0}


async def _completion(client) -> tuple[float, float]:
    """(end-to-end ms, ms inside the router or 0 when direct)."""
    start = time.perf_counter()
    answer = await client.post("/v1/completions", json=PROBE)
    answer.raise_for_status()
    return (time.perf_counter() - start) * 1000, float(answer.headers.get("X-Halyard-Router-Ms", 0.0))


async def _ttft(client) -> float:
    from halyard.bench.serve_client import send
    from halyard.bench.serve_data import BenchRequest

    args = argparse.Namespace(model=PROBE["model"], endpoint="completions", temperature=0.0, ignore_eos=True)
    result = await send(client, BenchRequest(0, PROBE["prompt"], 1, 1, 0.0), args)
    if not result.success:
        raise RuntimeError(f"streamed probe failed: {result.error}")
    return result.ttft * 1000


async def _probe(direct_url: str, router_url: str, pairs: int) -> dict[str, list[float]]:
    import httpx

    times: dict[str, list[float]] = {k: [] for k in ("direct", "router", "inside", "ttft_direct", "ttft_router")}
    async with httpx.AsyncClient(base_url=direct_url, timeout=60) as direct, \
            httpx.AsyncClient(base_url=router_url, timeout=60) as routed:
        clients = {"direct": direct, "router": routed}
        for i in range(pairs + WARMUP):
            for path in (("direct", "router") if i % 2 == 0 else ("router", "direct")):
                e2e, inside = await _completion(clients[path])
                ttft = await _ttft(clients[path])
                if i >= WARMUP:
                    times[path].append(e2e)
                    times[f"ttft_{path}"].append(ttft)
                    if path == "router":
                        times["inside"].append(inside)
    return times


def summarize(times: dict[str, list[float]]) -> dict:
    """p50/p99 of each path and of the per-pair differences (ms)."""
    from halyard.bench.serve_stats import percentile

    def stats(values):
        return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}

    out = {name: stats(values) for name, values in times.items()}
    out["added"] = stats([r - d for r, d in zip(times["router"], times["direct"])])
    out["ttft_added"] = stats([r - d for r, d in zip(times["ttft_router"], times["ttft_direct"])])
    out["pairs"] = len(times["direct"])
    return out


def added_latency(worker_url: str, router_url: str, pairs: int) -> dict:
    return summarize(asyncio.run(_probe(worker_url, router_url, pairs)))


def latency_table(latency: dict) -> str:
    rows = [("completion, 1 token: direct", latency["direct"]), ("completion, 1 token: router", latency["router"]),
            ("completion: router - direct, per pair", latency["added"]),
            ("stream TTFT: direct", latency["ttft_direct"]), ("stream TTFT: router", latency["ttft_router"]),
            ("stream TTFT: router - direct, per pair", latency["ttft_added"]),
            ("time inside the router (X-Halyard-Router-Ms)", latency["inside"])]
    lines = [f"| probe ({latency['pairs']} pairs) | p50 (ms) | p99 (ms) |", "| --- | --- | --- |"]
    lines += [f"| {name} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} |" for name, s in rows]
    return "\n".join(lines)
