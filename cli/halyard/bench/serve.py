"""`halyard bench serve`: online serving benchmark against an OpenAI-compatible server.

A pure HTTP client (httpx; no torch): sends a seeded synthetic workload
(see serve_data) at a Poisson/gamma request rate with optional concurrency
cap, streams every response and reports throughput, TTFT, TPOT, ITL, E2E
latency and goodput with vLLM's benchmark_serving definitions (serve_stats).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time


def _goodput(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, _, value = item.partition(":")
        if key not in ("ttft", "tpot", "e2el") or not value:
            raise argparse.ArgumentTypeError(f"--goodput expects ttft:MS tpot:MS e2el:MS, got {item!r}")
        out[key] = float(value)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--base-url", required=True, help="server root, e.g. http://127.0.0.1:8000")
    add("--model", required=True, help="served model name")
    add("--endpoint", choices=("completions", "chat"), default="completions")
    add("--dataset", choices=("sharegpt", "fixed", "shared-prefix"), default="sharegpt",
        help="synthetic ShareGPT-like lengths (seeded), fixed --input-len/--output-len, or "
             "shared-prefix: tenants whose requests share a long system prompt")
    add("--prefix-groups", type=int, default=8, help="tenants with --dataset shared-prefix")
    add("--system-prompt-len", type=int, default=256, help="system prompt words with --dataset shared-prefix")
    add("--input-len", type=int, default=128, help="prompt words with --dataset fixed")
    add("--output-len", type=int, default=128, help="output tokens with --dataset fixed")
    add("--max-input-len", type=int, default=1024, help="clip for sharegpt input lengths")
    add("--max-output-len", type=int, default=512, help="clip for sharegpt output lengths")
    add("--num-prompts", type=int, default=100)
    add("--request-rate", type=float, default=float("inf"), help="requests/s (inf: all at once)")
    add("--burstiness", type=float, default=1.0, help="gamma shape of arrival gaps (1 = Poisson)")
    add("--max-concurrency", type=int, default=None, help="requests in flight at most")
    add("--goodput", nargs="*", default=[], metavar="KEY:MS", help="SLOs, e.g. ttft:500 tpot:50")
    add("--seed", type=int, default=0)
    add("--temperature", type=float, default=0.0)
    add("--no-ignore-eos", dest="ignore_eos", action="store_false",
        help="let EOS end outputs early (default: exact output lengths)")
    add("--api-key", default=None)
    add("--timeout", type=float, default=600.0, help="per-request timeout in seconds")
    add("--ready-timeout", type=float, default=120.0,
        help="seconds to wait for a first successful request before measuring (0: no check)")
    add("--label", default=None, help="title in the report (default: base URL)")
    add("--result-json", default=None, metavar="PATH")
    add("--plot", default=None, metavar="PATH", help="PNG of latency distributions")


class _Progress:
    """tqdm when installed, else a line every 10%."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="requests", file=sys.stderr)
        except ImportError:
            self._bar = None

    def update(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self.done == self.total or self.done % max(1, self.total // 10) == 0:
            print(f"requests: {self.done}/{self.total}", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def _wait_ready(client, args, first) -> str | None:
    """Send one short request until it succeeds (model loaded); None when ready."""
    from dataclasses import replace

    from halyard.bench.serve_client import send

    probe = replace(first, output_len=1)
    deadline = time.monotonic() + args.ready_timeout
    while True:
        result = await send(client, probe, args)
        if result.success:
            return None
        if time.monotonic() >= deadline:
            return result.error
        await asyncio.sleep(1.0)


async def _run_workload(args, workload) -> tuple[list, float]:
    import httpx

    from halyard.bench.serve_client import send

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limit = args.max_concurrency or len(workload) or 1
    semaphore = asyncio.Semaphore(limit)
    progress = _Progress(len(workload))
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(base_url=args.base_url, headers=headers, limits=limits,
                                 timeout=httpx.Timeout(args.timeout)) as client:
        if args.ready_timeout > 0 and workload:
            error = await _wait_ready(client, args, workload[0])
            if error:
                raise RuntimeError(f"server not ready after {args.ready_timeout:.0f}s: {error}")
        start = time.perf_counter()

        async def one(req):
            await asyncio.sleep(max(0.0, start + req.send_at - time.perf_counter()))
            async with semaphore:
                result = await send(client, req, args)
            progress.update()
            return result

        results = await asyncio.gather(*(one(r) for r in workload))
        duration = time.perf_counter() - start
    progress.close()
    return list(results), duration


def run(args) -> int:
    from halyard.bench import serve_report
    from halyard.bench.serve_data import build_workload
    from halyard.bench.serve_stats import result_dict, summarize

    try:
        goodput = _goodput(args.goodput)
    except argparse.ArgumentTypeError as err:
        print(f"halyard bench serve: {err}", file=sys.stderr)
        return 2
    workload = build_workload(args)
    try:
        results, duration = asyncio.run(_run_workload(args, workload))
    except RuntimeError as err:
        print(f"halyard bench serve: {err}", file=sys.stderr)
        return 1
    summary = summarize(results, duration, goodput)
    title = args.label or args.base_url
    print(serve_report.table(summary, title))
    if args.result_json:
        config = {k: (str(v) if isinstance(v, float) and v == float("inf") else v)
                  for k, v in vars(args).items() if k not in ("func", "api_key")}
        serve_report.save_json(args.result_json, {"config": config, "summary": summary,
                                                  "requests": [result_dict(r) for r in results]})
    if args.plot:
        serve_report.plot(args.plot, results, title)
    return 0 if summary["completed"] > 0 else 1
