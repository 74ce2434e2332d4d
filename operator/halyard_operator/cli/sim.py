"""`halyard sim`: discrete-event fleet simulator running the operator's policies."""
from __future__ import annotations

from halyard_operator.cli.main import not_implemented


def register(subparsers) -> None:
    sim = subparsers.add_parser("sim", help="fleet simulator")
    sim.set_defaults(func=not_implemented("sim"))
