from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).parent))

from fakes import start_worker  # noqa: E402
from halyard_router.app import build_app  # noqa: E402
from halyard_router.config import RouterConfig  # noqa: E402


@pytest.fixture
async def workers():
    started = []

    async def start(name: str, **kw):
        worker = await start_worker(name, **kw)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.server.close()


@pytest.fixture
async def router():
    """start(config_overrides..., discovery=None) -> (url, app)."""
    servers = []

    async def start(discovery=None, **overrides):
        config = RouterConfig(**{"metrics_interval": 0.05, **overrides})
        app = build_app(config, discovery)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), app

    yield start
    for server in servers:
        await server.close()
