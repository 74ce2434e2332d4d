"""`halyard bench router`: the router's policies against the same real workers.

Starts --workers `halyard-worker` processes serving SmolLM2-135M-Instruct on
the CPU (float32, a bounded KV cache so that tenants' prefixes compete for
it), then for each policy a `halyard-router` with those workers as static
backends, and sends the multi-tenant workload of `halyard bench serve
--dataset shared-prefix` through it (each policy gets its own tenants'
prompts, so no policy inherits another's cache). Reported per policy: prefix
cache hit rate (cached / queried prompt tokens, from the workers' vllm:
counters), TTFT p50/p95, request and output throughput. Then the router's
added latency: small non-streaming requests alternate between one worker
directly and a router in front of it; p50/p99 of both, their difference, and
the time each routed request spent inside the router (`X-Halyard-Router-Ms`:
before the upstream send plus after the upstream answer), which the worker's
own jitter does not blur. `--policies none` measures only that.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

POLICIES = ("round-robin", "prefix", "least-load")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--workers", type=int, default=3)
    add("--policies", default=",".join(POLICIES), help="comma-separated routing policies to compare")
    add("--num-prompts", type=int, default=72)
    add("--prefix-groups", type=int, default=6, help="tenants, each with its own system prompt")
    add("--system-prompt-len", type=int, default=200, help="system prompt words")
    add("--input-len", type=int, default=8, help="user question words")
    add("--output-len", type=int, default=8, help="output tokens")
    add("--max-concurrency", type=int, default=3)
    add("--request-rate", type=float, default=float("inf"))
    add("--kv-cache-memory", default="72Mi", help="per worker KV cache (46 KB a token for SmolLM2 in float32)")
    add("--max-num-seqs", type=int, default=4)
    add("--latency-probes", type=int, default=200, help="request pairs for the added-latency figure")
    add("--seed", type=int, default=0)
    add("--result-json", default=None, metavar="PATH")


def _serve_args(args, base_url: str, seed: int) -> argparse.Namespace:
    return argparse.Namespace(
        base_url=base_url, model="smollm2", endpoint="chat", dataset="shared-prefix", input_len=args.input_len,
        output_len=args.output_len, num_prompts=args.num_prompts, request_rate=args.request_rate, burstiness=1.0,
        max_concurrency=args.max_concurrency, seed=seed, temperature=0.0, ignore_eos=True, api_key=None,
        timeout=600.0, ready_timeout=0, prefix_groups=args.prefix_groups, system_prompt_len=args.system_prompt_len)


def run_policy(args, policy: str, workers: list, log_dir: Path, seed: int) -> dict:
    from halyard.bench.router_procs import prefix_counters, start_router
    from halyard.bench.serve import _run_workload
    from halyard.bench.serve_data import build_workload
    from halyard.bench.serve_stats import percentile, summarize

    urls = [w.url for w in workers]
    router = start_router(urls, policy, log_dir)
    try:
        before = prefix_counters(urls)
        serve_args = _serve_args(args, router.url, seed)
        results, duration = asyncio.run(_run_workload(serve_args, build_workload(serve_args)))
        after = prefix_counters(urls)
    finally:
        router.stop()
    summary = summarize(results, duration, {})
    summary["ttft_p95_ms"] = percentile([r.ttft * 1000 for r in results if r.success], 95)
    queried = after[1] - before[1]
    summary["prefix_hit_rate"] = (after[0] - before[0]) / queried if queried else 0.0
    return summary


def added_latency(args, worker, log_dir: Path) -> dict:
    """Alternate direct and routed requests to one worker; latencies in ms."""
    import httpx

    from halyard.bench.router_procs import start_router
    from halyard.bench.serve_stats import percentile

    router = start_router([worker.url], "prefix", log_dir)
    body = {"model": "smollm2", "prompt": "Hi", "max_tokens": 1, "temperature": 0}
    times = {"direct": [], "router": [], "inside": []}
    try:
        with httpx.Client(timeout=60) as client:
            for i in range(args.latency_probes + 5):
                for name, url in (("direct", worker.url), ("router", router.url)):
                    start = time.perf_counter()
                    answer = client.post(f"{url}/v1/completions", json=body)
                    answer.raise_for_status()
                    if i >= 5:  # warm-up pairs are not counted
                        times[name].append((time.perf_counter() - start) * 1000)
                        if name == "router":
                            times["inside"].append(float(answer.headers["X-Halyard-Router-Ms"]))
    finally:
        router.stop()
    out = {name: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)} for name, v in times.items()}
    out["added_p50_ms"] = out["router"]["p50_ms"] - out["direct"]["p50_ms"]
    out["added_p99_ms"] = out["router"]["p99_ms"] - out["direct"]["p99_ms"]
    return out


def table(results: dict, latency: dict) -> str:
    lines = ["| policy | prefix cache hit rate | TTFT p50 (ms) | TTFT p95 (ms) | requests/s | output tok/s | failed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for policy, s in results.items():
        lines.append(f"| {policy} | {s['prefix_hit_rate']:.1%} | {s['ttft']['median_ms']:.0f} | "
                     f"{s['ttft_p95_ms']:.0f} | {s['request_throughput']:.2f} | {s['output_throughput']:.1f} | "
                     f"{s['failed']} |")
    lines += ["", "| path | p50 (ms) | p99 (ms) |", "| --- | --- | --- |"]
    for name in ("direct", "router"):
        lines.append(f"| {name} | {latency[name]['p50_ms']:.2f} | {latency[name]['p99_ms']:.2f} |")
    lines.append(f"| router minus direct | {latency['added_p50_ms']:.2f} | {latency['added_p99_ms']:.2f} |")
    lines.append(f"| time inside the router (X-Halyard-Router-Ms) | {latency['inside']['p50_ms']:.2f} | "
                 f"{latency['inside']['p99_ms']:.2f} |")
    return "\n".join(lines)


def run(args) -> int:
    from halyard.bench.router_procs import start_worker
    from halyard.testing.smollm2 import ModelUnavailable, hf_reference_dir

    policies = [p.strip() for p in args.policies.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        print(f"halyard bench router: --policies: unknown {unknown}; use {', '.join(POLICIES)}", file=sys.stderr)
        return 2
    try:
        model = hf_reference_dir()
    except ModelUnavailable as err:
        print(f"halyard bench router: {err}", file=sys.stderr)
        return 1
    log_dir = Path(tempfile.mkdtemp(prefix="halyard-bench-router-"))
    workers = []
    try:
        workers = [start_worker(model, "smollm2", log_dir, args.kv_cache_memory, args.max_num_seqs)
                   for _ in range(args.workers)]
        results = {}
        for i, policy in enumerate(policies):
            results[policy] = run_policy(args, policy, workers, log_dir, args.seed * 100 + i)
        latency = added_latency(args, workers[0], log_dir)
    finally:
        for worker in workers:
            worker.stop()
    print(table(results, latency))
    print(f"(logs: {log_dir})", file=sys.stderr)
    if args.result_json:
        Path(args.result_json).write_text(json.dumps({"policies": results, "latency": latency}, indent=2, default=str))
    return 0

