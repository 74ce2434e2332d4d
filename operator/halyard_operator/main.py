"""`halyard-operator`: run the LLMDeployment operator (kopf).

One replica runs kopf directly (`standalone`). With `--leader-elect`, any
number of replicas run and only the holder of a coordination.k8s.io Lease in
the operator's namespace runs kopf (halyard_operator.leadership); kopf's own
peering (a kopf CRD, not a Lease) stays off.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from functools import partial

import kopf

from halyard_operator import endpoint
from halyard_operator.config import ConfigError, load_config
from halyard_operator.handlers import build_registry
from halyard_operator.kube.connection import discover
from halyard_operator.kube.lease import LeaseSettings
from halyard_operator.leadership import default_identity, default_namespace, run_elected
from halyard_operator.telemetry import OperatorMetrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halyard-operator", description=__doc__.splitlines()[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument("--config", help="operator config YAML (default: built-in defaults)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then KUBECONFIG)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="health endpoint URL (also serves /metrics on its port), or 'off'")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    elect = parser.add_argument_group("leader election (run two or more replicas)")
    elect.add_argument("--leader-elect", action="store_true", help="run kopf only while holding the Lease")
    elect.add_argument("--leader-elect-namespace", default=None,
                       help="the Lease's namespace (default: POD_NAMESPACE or the service account's)")
    elect.add_argument("--leader-elect-lease-name", default="halyard-operator")
    elect.add_argument("--leader-elect-identity", default=None, help="default: pod name + random suffix")
    elect.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS",
                       help="a standby takes over this long after the leader's last renewal (default 15)")
    elect.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS",
                       help="the leader gives up (exits) when it could not renew for this long (default 10)")
    elect.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS",
                       help="renewal and acquisition interval (default 2)")
    return parser


def lease_settings(args: argparse.Namespace) -> LeaseSettings | None:
    """The election settings, or None without --leader-elect. Raises ValueError naming the flag."""
    if not args.leader_elect:
        return None
    namespace = args.leader_elect_namespace or default_namespace()
    if not namespace:
        raise ValueError("--leader-elect-namespace is required outside a pod (no POD_NAMESPACE)")
    return LeaseSettings(namespace=namespace, name=args.leader_elect_lease_name,
                         identity=args.leader_elect_identity or default_identity(),
                         lease_duration_s=args.leader_elect_lease_duration,
                         renew_deadline_s=args.leader_elect_renew_deadline,
                         retry_period_s=args.leader_elect_retry_period)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # kopf's per-event "Handler ... succeeded" lines: one per pod, child and node event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if not args.namespace and not args.all_namespaces:
        print("halyard-operator: pass --namespace NS (repeatable) or --all-namespaces", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        election = lease_settings(args)
        listen = None if args.liveness == "off" else endpoint.Listen.from_url(args.liveness)
    except (ConfigError, ValueError) as exc:
        print(f"halyard-operator: {exc}", file=sys.stderr)
        return 2
    connection = discover(args.kubeconfig)
    telemetry = OperatorMetrics()
    registry = build_registry(config, connection, telemetry)
    operator = partial(kopf.operator, registry=registry, standalone=True, clusterwide=args.all_namespaces,
                       namespaces=args.namespace)
    asyncio.run(serve(listen, election, connection, operator, telemetry))
    return 0


async def serve(listen, election, connection, operator, telemetry: OperatorMetrics) -> None:
    """The health/metrics endpoint for the whole life of the process; kopf directly or under the Lease."""
    runner = await endpoint.start(listen, telemetry.exposition) if listen else None
    try:
        if election is None:
            await operator()
        else:
            await run_elected(connection, election, operator)
    finally:
        if runner is not None:
            await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
