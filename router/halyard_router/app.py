"""The router's aiohttp application: routes, background tasks, shared state."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

from halyard_router.backends import Backend, Backends
from halyard_router.cache import ResponseCache
from halyard_router.config import RouterConfig
from halyard_router.metrics import RouterMetrics
from halyard_router.proxy import Proxy, error_response
from halyard_router.scrape import scrape_forever

BACKENDS, PROXY, METRICS = web.AppKey("backends", Backends), web.AppKey("proxy", Proxy), \
    web.AppKey("metrics", RouterMetrics)
GENERATE_PATHS = ("/v1/completions", "/v1/chat/completions")
# Pooled upstream connections idle at most this long: below the workers' keep-alive
# (uvicorn's 5 s), so the router never sends on a connection the worker is closing
# (that would cost a retry and bench a healthy worker).
UPSTREAM_IDLE_S = 4.0


def build_app(config: RouterConfig, discovery=None) -> web.Application:
    """`discovery(backends) -> coroutine` keeps the membership current; None uses
    the static `config.backends`."""
    app = web.Application(client_max_size=64 << 20)
    backends, metrics = Backends(), RouterMetrics()
    app[BACKENDS], app[METRICS] = backends, metrics
    if discovery is None:
        backends.replace([Backend(url, url) for url in config.backends])

    async def lifecycle(app: web.Application):
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=UPSTREAM_IDLE_S)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            cache = ResponseCache(config.cache_entries, config.cache_bytes, config.cache_ttl) \
                if config.cache_entries else None
            app[PROXY] = Proxy(config, backends, metrics, session, cache)
            tasks = [asyncio.create_task(scrape_forever(session, backends, config.metrics_interval))]
            if discovery is not None:
                tasks.append(asyncio.create_task(discovery(backends)))
            yield
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.cleanup_ctx.append(lifecycle)
    for path in GENERATE_PATHS:
        app.router.add_post(path, _generate)
    app.router.add_get("/v1/models", _models(config))
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    return app


async def _generate(request: web.Request) -> web.StreamResponse:
    return await request.app[PROXY].handle(request)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _models(config: RouterConfig):
    async def models(request: web.Request) -> web.Response:
        if config.served_model:
            return web.json_response({"object": "list", "data": [
                {"id": config.served_model, "object": "model", "created": 0, "owned_by": "halyard"}]})
        proxy, backends = request.app[PROXY], request.app[BACKENDS]
        for backend in backends.usable():
            try:
                async with proxy.session.get(f"{backend.url}/v1/models") as resp:
                    return web.Response(body=await resp.read(), status=resp.status, content_type="application/json")
            except aiohttp.ClientError:
                backends.bench(backend.name)
        return error_response(503, "no backend is ready to list models; retry later", "no_backend", retry_after=1)
    return models


async def _ready(request: web.Request) -> web.Response:
    """Ready once discovery has listed the pods: with no worker the router still
    takes requests (it holds them while the deployment scales up from zero)."""
    backends = request.app[BACKENDS]
    if not backends.synced:
        return web.json_response({"status": "not ready", "reason": "backends not listed yet"}, status=503)
    return web.json_response({"status": "ready", "backends": len(backends.usable())})


async def _metrics(request: web.Request) -> web.Response:
    metrics, backends = request.app[METRICS], request.app[BACKENDS]
    metrics.backends.set(len(backends.usable()))
    return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
