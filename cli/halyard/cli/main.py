"""`halyard` entry point: one argparse tree, one module per command group.

Each command module exposes `register(subparsers)` and sets `func` on its
parser. A command group whose work has not landed yet must say so and exit
non-zero (see `not_implemented`).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from halyard_operator import __version__

# Command groups, imported lazily so `halyard --help` never pulls torch.
COMMAND_MODULES = (
    "halyard.cli.dev",
    "halyard.cli.demo",
    "halyard.cli.bench",
    "halyard.cli.sim",
)


def not_implemented(what: str):
    """A command handler for work that has not landed: says so, exits 2."""

    def handler(_args: argparse.Namespace) -> int:
        print(f"halyard: '{what}' is not implemented yet", file=sys.stderr)
        return 2

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halyard",
        description="Halyard: LLM inference on Kubernetes (dev cluster, demo, benchmarks, fleet simulator).",
    )
    parser.add_argument("--version", action="version", version=f"halyard {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
