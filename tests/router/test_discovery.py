"""Pod discovery: which pods are backends, and the watch keeping them current."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

from halyard_operator.kube.connection import Connection
from halyard_router.backends import Backends
from halyard_router.discovery import PodWatch, backend_of


def pod(name, ip="127.1.0.5", ready=True, deployment="chat", **meta):
    return {"metadata": {"name": name, "labels": {"halyard.dev/deployment": deployment}, **meta},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_only_ready_live_undrained_workers_of_the_deployment_are_backends():
    assert backend_of(pod("a"), "chat", 8000).url == "http://127.1.0.5:8000"
    assert backend_of(pod("a", ip="fd00::1"), "chat", 8000).url == "http://[fd00::1]:8000"
    assert backend_of(pod("a", ready=False), "chat", 8000) is None
    assert backend_of(pod("a", deployment="other"), "chat", 8000) is None
    assert backend_of(pod("a", deletionTimestamp="2026-01-01T00:00:00Z"), "chat", 8000) is None
    assert backend_of(pod("a", annotations={"halyard.dev/draining": "node-interruption"}), "chat", 8000) is None


async def test_watch_applies_events_as_they_arrive():
    events: asyncio.Queue = asyncio.Queue()

    async def pods(request):
        if request.query.get("watch") != "1":
            assert request.query["labelSelector"] == "halyard.dev/deployment=chat"
            return web.json_response({"metadata": {"resourceVersion": "7"}, "items": [pod("a"), pod("b", ip="127.1.0.6")]})
        assert request.query["resourceVersion"] == "7"
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write((json.dumps(await events.get()) + "\n").encode())

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/team-a/pods", pods)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    backends = Backends()
    watch = PodWatch(Connection(server=str(server.make_url("")).rstrip("/")), "team-a", "chat", 8000, backends)
    task = asyncio.create_task(watch.run())
    try:
        await _until(lambda: set(backends.members) == {"a", "b"})
        await events.put({"type": "MODIFIED", "object": pod("a", annotations={"halyard.dev/draining": "x"})})
        await _until(lambda: set(backends.members) == {"b"})
        await events.put({"type": "DELETED", "object": pod("b")})
        await events.put({"type": "ADDED", "object": pod("c", ip="127.1.0.7")})
        await _until(lambda: set(backends.members) == {"c"})
        assert backends.members["c"].url == "http://127.1.0.7:8000"
    finally:
        task.cancel()
        await server.close()


async def _until(check, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
