"""`halyard-router`: the per-deployment router's command line."""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from halyard_router.app import build_app
from halyard_router.config import RouterConfig, parse_config


def discovery_of(config: RouterConfig):
    """The pod watch for `--deployment`, or None for static backends."""
    if not config.deployment:
        return None
    from halyard_operator.kube.connection import discover
    from halyard_router.discovery import PodWatch

    connection = discover(config.kubeconfig)
    return lambda backends: PodWatch(connection, config.namespace, config.deployment, config.worker_port,
                                     backends).run()


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    app = build_app(config, discovery_of(config))
    where = f"deployment {config.namespace}/{config.deployment}" if config.deployment else \
        f"{len(config.backends)} static backends"
    logging.getLogger("halyard_router").info("Routing %s with policy %s on %s:%d", where, config.policy,
                                             config.host, config.port)
    # handler_cancellation: a client that leaves cancels its handler, which closes the upstream
    # request (the worker aborts it) and frees its backend slot or admission-queue place at once
    web.run_app(app, host=config.host, port=config.port, access_log=None, print=None, handler_cancellation=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
