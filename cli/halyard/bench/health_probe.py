"""Probe latency while large prompts are tokenized.

    python -m halyard.bench.health_probe --url http://127.0.0.1:8000 --model NAME \\
        [--prompts 6] [--megabytes 5]

Sends `--prompts` completions of `--megabytes` MB of text at once and polls
`GET /health` every 20 ms until they are all answered; prints the probe
latencies (max, p50, count) as JSON. A liveness probe with a 1 s timeout fails
when max reaches 1 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx


async def run(url: str, model: str, prompts: int, megabytes: float) -> dict:
    body = json.dumps({"model": model, "prompt": "lorem ipsum dolor " * int(megabytes * 2**20 / 18),
                       "max_tokens": 1})
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        async def big():
            resp = await http.post("/v1/completions", content=body,
                                   headers={"content-type": "application/json"})
            return resp.status_code

        tasks = [asyncio.ensure_future(big()) for _ in range(prompts)]
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=url, timeout=600) as probe:
            while not all(t.done() for t in tasks):
                started = time.monotonic()
                await probe.get("/health")
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.02)
        statuses = await asyncio.gather(*tasks)
    return {"prompts": prompts, "megabytes": megabytes, "statuses": sorted(set(statuses)),
            "health_max_ms": round(1000 * max(latencies), 1),
            "health_p50_ms": round(1000 * statistics.median(latencies), 1), "probes": len(latencies)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="halyard.bench.health_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--megabytes", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.url, args.model, args.prompts, args.megabytes))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
