"""`halyard demo up|down`: the one-command local demo."""
from __future__ import annotations


def _run(args) -> int:
    from halyard.dev import demo

    return demo.up() if args.action == "up" else demo.down()


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="local demo cluster serving a real LLMDeployment")
    demo.add_argument("action", choices=["up", "down"])
    demo.set_defaults(func=_run)
