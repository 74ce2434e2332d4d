"""The `halyard-router` process as a pod runs it (its own server settings), in
front of a scripted worker."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx

QUEUED_BATCH = 'halyard:router_requests_queued{tier="batch"} 1.0'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := await check():
                return value
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _open_stream(port: int, prompt: str) -> asyncio.StreamWriter:
    """A streaming completion on a bare connection the caller closes when it likes."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": 4, "stream": True}).encode()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    return writer


async def test_a_client_that_leaves_frees_its_backend_slot_for_a_queued_request(workers):
    worker = await workers("w", delay=60.0)  # the first token of the first request is a minute away
    port = _free_port()
    router = subprocess.Popen([sys.executable, "-m", "halyard_router.main", "--backend", worker.url,
                               "--host", "127.0.0.1", "--port", str(port), "--tier", "batch", "--saturation", "1",
                               "--metrics-interval", "0.1", *(a for t in ("batch", "standard", "critical")
                                                              for a in (f"--queue-wait-{t}", "30"))])
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            await _wait_for(lambda: _ok(client.get(f"{url}/ready")), 30, "the router ready")
            leaving = await _open_stream(port, "first")
            await _wait_for(lambda: _true(len(worker.bodies) == 1), 10, "the first request at the worker")
            worker.delay = 0.0
            queued = asyncio.create_task(client.post(f"{url}/v1/completions", json={"model": "m", "prompt": "second"}))
            await _wait_for(lambda: _has(client.get(f"{url}/metrics"), QUEUED_BATCH), 10, "the second request queued")
            left = time.monotonic()
            leaving.close()
            answer = await queued
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - left < 10  # not after the first request's minute
            assert worker.gone == 1  # the router closed the abandoned request upstream
    finally:
        router.terminate()
        router.wait(10)


async def _ok(response) -> bool:
    return (await response).status_code == 200


async def _has(response, line: str) -> bool:
    return line in (await response).text


async def _true(value: bool) -> bool:
    return value
