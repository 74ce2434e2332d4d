"""The operator's own HTTP endpoint: `/healthz` (liveness: the event loop
answers) and `/metrics` (Prometheus text). It runs from start-up to exit, on
the leader and on a standby alike, so a standby waiting for the Lease is
alive, not restarted by its liveness probe."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from aiohttp import web

METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Listen:
    """Where the endpoint listens, from a URL such as http://0.0.0.0:8080/healthz."""

    host: str
    port: int
    health_path: str

    @classmethod
    def from_url(cls, url: str) -> "Listen":
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.port:
            raise ValueError(f"--liveness {url!r}: expected http://HOST:PORT/PATH, or 'off'")
        return cls(host=parts.hostname or "0.0.0.0", port=parts.port, health_path=parts.path or "/healthz")


async def start(listen: Listen, metrics: Callable[[], bytes] | None = None,
                leading: Callable[[], bool] = lambda: True) -> web.AppRunner:
    """Serve until `await runner.cleanup()`."""
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n" if leading() else "ok (standby)\n")

    async def exposition(_: web.Request) -> web.Response:
        body = metrics() if metrics else b""
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get(listen.health_path, health)
    app.router.add_get(METRICS_PATH, exposition)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    return runner
