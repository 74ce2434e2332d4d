"""API key check as plain ASGI middleware (keeps streaming and disconnects intact).

Probes (`/health`, `/ready`, `/metrics`) stay open so kubelet and Prometheus
need no secret; everything else needs `Authorization: Bearer KEY`.
"""
from __future__ import annotations

import hmac
import json

OPEN_PATHS = ("/health", "/ready", "/metrics")


class ApiKeyMiddleware:
    def __init__(self, app, api_key: str):
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            return await self.app(scope, receive, send)
        message = ("missing API key: send `Authorization: Bearer <key>`" if not given
                   else "invalid API key")
        body = json.dumps({"error": {"message": message, "type": "authentication_error",
                                     "param": None, "code": "invalid_api_key"}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
