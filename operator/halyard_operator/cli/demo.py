"""`halyard demo up|down`: the one-command local demo."""
from __future__ import annotations

from halyard_operator.cli.main import not_implemented


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="local demo cluster serving a real LLMDeployment")
    demo.add_argument("action", choices=["up", "down"])
    demo.set_defaults(func=not_implemented("demo"))
