"""`halyard bench offline|serve|kernels|operator`: benchmarks (reported, never timed tests)."""
from __future__ import annotations

from halyard_operator.cli.main import not_implemented


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks")
    kinds = bench.add_subparsers(dest="bench_kind", metavar="KIND")
    for kind in ("offline", "serve", "kernels", "operator"):
        sub = kinds.add_parser(kind, help=f"{kind} benchmark")
        sub.set_defaults(func=not_implemented(f"bench {kind}"))
    bench.set_defaults(func=not_implemented("bench"))
