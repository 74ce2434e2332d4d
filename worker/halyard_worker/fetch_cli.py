"""`halyard-worker fetch --model URI [--revision R] --cache DIR`: the pod's init container.

Fetches a remote model (hf://, s3://) into the node-local cache, verifying
checksums (a cached entry too), and prints the local path on stdout; a local
source is only checked. Exit 0 when the model is ready to load, 1 when it
cannot be fetched, 2 when the arguments are wrong; a failure is also the
container's termination message (`ModelLoadFailed: ...`).
"""
from __future__ import annotations

import argparse
import logging
import sys


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--model", required=True, help="the same model location `serve --model` takes")
    add("--revision", help="branch, tag or commit of an hf:// model")
    add("--cache", required=True, help="the model cache directory (`serve --model-cache`)")
    add("--no-verify", action="store_true", help="trust a cached entry's manifest without checksums")


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halyard_worker.model.fetch import resolve
    from halyard_worker.model.source import InvalidModelSource, parse_model_uri
    from halyard_worker.termination import MODEL_LOAD_FAILED, write_termination_message

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        source = parse_model_uri(args.model, args.revision)
    except InvalidModelSource as err:
        print(f"halyard-worker fetch: {err}", file=sys.stderr)
        write_termination_message(MODEL_LOAD_FAILED, f"{args.model!r}: {err}")
        return 2
    try:
        path = resolve(source, Path(args.cache), verify=not args.no_verify)
    except (OSError, RuntimeError) as err:
        print(f"halyard-worker fetch: {err}", file=sys.stderr)
        write_termination_message(MODEL_LOAD_FAILED, f"{args.model!r} cannot be fetched: {err}")
        return 1
    print(path)
    return 0
