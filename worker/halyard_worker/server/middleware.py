"""Plain ASGI middleware (keeps streaming and disconnects intact): a request
body limit (413 before the app parses anything) and a 5xx counter."""
from __future__ import annotations

import json
from typing import Callable

BODY_METHODS = (b"POST", b"PUT", b"PATCH")


async def send_error(send, status: int, message: str, code: str, headers=()) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "param": None, "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Reads at most `max_bytes` of a request body, then hands it to the app;
    a larger body gets 413 (by Content-Length at once, else as it streams in)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"].encode() not in BODY_METHODS:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._too_large(send)
            if not message.get("more_body"):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send) -> None:
        await send_error(send, 413, f"request body larger than {self.max_bytes} bytes "
                                    "(--max-request-bytes); send a smaller request",
                         "request_too_large", [(b"connection", b"close")])


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later messages: the disconnect
    return replay


class ServerErrorCounter:
    """Calls `count(status)` for every response with a 5xx status."""

    def __init__(self, app, count: Callable[[int], None]):
        self.app = app
        self.count = count

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start" and message["status"] >= 500:
                self.count(message["status"])
            await send(message)
        await self.app(scope, receive, counting_send)
