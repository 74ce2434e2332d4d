"""`halyard-worker` entry point: `serve --model URI ...` and `fetch --model URI --cache DIR`."""
from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors also become the container's termination message."""

    def error(self, message: str):
        from halyard_worker.termination import INVALID_ARGUMENTS, write_termination_message

        write_termination_message(INVALID_ARGUMENTS, message)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    from halyard_worker.fetch_cli import add_fetch_arguments
    from halyard_worker.server.config import add_serve_arguments

    parser = _Parser(prog="halyard-worker", description="Halyard worker pod process")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    add_serve_arguments(serve)
    fetch = commands.add_parser("fetch", help="fetch a model into the node-local cache (init container)")
    add_fetch_arguments(fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from halyard_worker.server.config import ModelLocationError, config_from_args
        from halyard_worker.server.serve import serve
        from halyard_worker.termination import (
            INVALID_ARGUMENTS, MODEL_LOAD_FAILED, WORKER_ERROR, write_termination_message,
        )

        try:
            config = config_from_args(args)
        except (ValueError, FileNotFoundError) as err:  # bad flag, or a local model that is not there
            print(f"halyard-worker serve: {err}", file=sys.stderr)
            kind = MODEL_LOAD_FAILED if isinstance(err, (ModelLocationError, FileNotFoundError)) else INVALID_ARGUMENTS
            write_termination_message(kind, str(err))
            return 2
        try:
            return serve(config)
        except Exception as err:  # a crash: say why before the traceback
            write_termination_message(WORKER_ERROR, f"{type(err).__name__}: {err}")
            raise
    if args.command == "fetch":
        from halyard_worker.fetch_cli import run_fetch

        return run_fetch(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
