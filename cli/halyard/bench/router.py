"""`halyard bench router`: the router's policies against the same real workers.

Starts --workers `halyard-worker` processes serving SmolLM2-135M-Instruct on
the CPU (float32, a bounded KV cache so that tenants' prefixes compete for
it), then for each policy a `halyard-router` with those workers as static
backends, and sends the multi-tenant workload of `halyard bench serve
--dataset shared-prefix` through it (each policy gets its own tenants'
prompts, so no policy inherits another's cache). Reported per policy: prefix
cache hit rate (cached / queried prompt tokens, from the workers' vllm:
counters), TTFT p50/p95, request and output throughput. Then the router's
added latency against one worker directly, side by side (router_latency:
alternating pairs of a one-token completion and a streamed request timed by
`halyard bench serve`'s client; per-pair differences, and the time inside the
router from `X-Halyard-Router-Ms`). `--policies none` measures only that.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
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
    add("--latency-backend", choices=("worker", "stub", "both"), default="both",
        help="what the added latency is measured against: a real worker, a stand-in that answers at once "
             "(the router's own cost without a model's jitter), or both")
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
    """The router's added latency in front of one worker (router_latency)."""
    from halyard.bench.router_latency import added_latency as measure
    from halyard.bench.router_procs import start_router

    router = start_router([worker.url], "prefix", log_dir)
    try:
        return measure(worker.url, router.url, args.latency_probes)
    finally:
        router.stop()


def table(results: dict, latency: dict) -> str:
    from halyard.bench.router_latency import latency_table

    lines = []
    if results:
        lines += ["| policy | prefix cache hit rate | TTFT p50 (ms) | TTFT p95 (ms) | requests/s | output tok/s | "
                  "failed |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for policy, s in results.items():
        lines.append(f"| {policy} | {s['prefix_hit_rate']:.1%} | {s['ttft']['median_ms']:.0f} | "
                     f"{s['ttft_p95_ms']:.0f} | {s['request_throughput']:.2f} | {s['output_throughput']:.1f} | "
                     f"{s['failed']} |")
    for backend, figures in latency.items():
        title = "a real worker (SmolLM2-135M, CPU)" if backend == "worker" else "a stand-in worker that answers at once"
        lines += ["", f"Added latency in front of {title}:", "", latency_table(figures)]
    return "\n".join(lines)


def run(args) -> int:
    from halyard.bench.router_procs import start_stub_worker, start_worker
    from halyard.testing.smollm2 import ModelUnavailable, hf_reference_dir

    policies = [p.strip() for p in args.policies.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        print(f"halyard bench router: --policies: unknown {unknown}; use {', '.join(POLICIES)}", file=sys.stderr)
        return 2
    log_dir = Path(tempfile.mkdtemp(prefix="halyard-bench-router-"))
    results, latency = {}, {}
    if args.latency_backend in ("stub", "both"):
        stub = start_stub_worker(log_dir)
        try:
            latency["stub"] = added_latency(args, stub, log_dir)
        finally:
            stub.stop()
    if policies or args.latency_backend != "stub":
        try:
            model = hf_reference_dir()
        except ModelUnavailable as err:
            print(f"halyard bench router: {err}", file=sys.stderr)
            return 1
        workers = []
        try:
            workers = [start_worker(model, "smollm2", log_dir, args.kv_cache_memory, args.max_num_seqs)
                       for _ in range(args.workers)]
            for i, policy in enumerate(policies):
                results[policy] = run_policy(args, policy, workers, log_dir, args.seed * 100 + i)
            if args.latency_backend != "stub":
                latency["worker"] = added_latency(args, workers[0], log_dir)
        finally:
            for worker in workers:
                worker.stop()
    print(table(results, latency))
    print(f"(logs: {log_dir})", file=sys.stderr)
    if args.result_json:
        Path(args.result_json).write_text(json.dumps({"policies": results, "latency": latency}, indent=2, default=str))
    return 0

