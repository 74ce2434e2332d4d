"""The router's upstream connections against the worker's HTTP server."""
from __future__ import annotations

from halyard_router.app import UPSTREAM_IDLE_S
from halyard_worker.server.serve import KEEP_ALIVE_S


def test_the_router_never_reuses_a_connection_the_worker_is_about_to_close():
    # a pooled connection idle past the worker's keep-alive may be closed under the
    # router's request: a spurious retry, and the worker benched for seconds
    assert UPSTREAM_IDLE_S < KEEP_ALIVE_S
