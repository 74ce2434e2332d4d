"""`halyard-operator`: run the LLMDeployment operator (kopf, standalone).

Peering is off (`standalone`): the operator runs as a single replica with the
Recreate strategy, so no kopf peering CRD or RBAC is needed.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from halyard_operator.config import ConfigError, load_config
from halyard_operator.handlers import build_registry
from halyard_operator.kube.connection import discover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halyard-operator", description=__doc__.splitlines()[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument("--config", help="operator config YAML (default: built-in defaults)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then KUBECONFIG)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="liveness endpoint URL, or 'off'")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.namespace and not args.all_namespaces:
        print("halyard-operator: pass --namespace NS (repeatable) or --all-namespaces", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"halyard-operator: {exc}", file=sys.stderr)
        return 2
    registry = build_registry(config, discover(args.kubeconfig))
    asyncio.run(kopf.operator(
        registry=registry, standalone=True, clusterwide=args.all_namespaces,
        namespaces=args.namespace, liveness_endpoint=None if args.liveness == "off" else args.liveness))
    return 0


if __name__ == "__main__":
    sys.exit(main())
