"""`halyard dev ...`: the local control plane (real binaries, kwok GPU nodes)."""
from __future__ import annotations

from halyard_operator.cli.main import not_implemented


def register(subparsers) -> None:
    dev = subparsers.add_parser("dev", help="local development cluster")
    dev.set_defaults(func=not_implemented("dev"))
