"""`halyard bench KIND`: benchmarks (reported figures, never timed tests).

Each kind lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`; heavy imports (torch, HTTP clients) happen inside `run`.
A kind whose module has not landed says so and exits non-zero.
"""
from __future__ import annotations

import importlib

from halyard.cli.main import not_implemented

KINDS = {
    "offline": ("halyard.bench.offline", "engine throughput vs transformers generate"),
    "serve": ("halyard.bench.serve", "online serving benchmark against an OpenAI-compatible server"),
    "overhead": ("halyard.bench.overhead", "engine host time per decode step (no-op model)"),
    "kernels": ("halyard.bench.kernels", "CUDA kernel bandwidth vs the torch reference (GPU)"),
    "operator": ("halyard.bench.operator", "operator reconcile latency and footprint"),
    "quality": ("halyard.bench.quality", "perplexity, top-1 agreement and KL of a quantization vs unquantized"),
    "scenarios": ("halyard.bench.scenarios", "every built-in simulator scenario, seeds 0 and 1, one table"),
    "router": ("halyard.bench.router", "router policies vs round robin over real workers (SmolLM2 on CPU)"),
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None
        raise


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks")
    kinds = bench.add_subparsers(dest="bench_kind", metavar="KIND")
    for kind, (module_name, help_text) in KINDS.items():
        sub = kinds.add_parser(kind, help=help_text)
        module = _load(module_name)
        if module is None:
            sub.set_defaults(func=not_implemented(f"bench {kind}"))
            continue
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    bench.set_defaults(func=not_implemented("bench (name a KIND)"))
