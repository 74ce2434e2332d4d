"""Large JSON request bodies are parsed and validated off the event loop.

FastAPI parses a body with `json.loads` and validates it with pydantic on the
event loop; for a multi-megabyte prompt that takes long enough to delay
`/health`. `OffLoopBodyRoute` (the app's route class) does both on a worker
thread when a JSON body is larger than `THREAD_BYTES`, then hands FastAPI the
validated model (pydantic returns a model instance as it is, so FastAPI's own
validation costs nothing). Failures are raised as FastAPI raises them (the
same `RequestValidationError` errors and body), so the client gets the same
400 either way. Small bodies take FastAPI's path unchanged.
"""
from __future__ import annotations

import asyncio
import email.message
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

THREAD_BYTES = 64 * 1024  # bodies above this are parsed on a worker thread
_pool = ThreadPoolExecutor(2, thread_name_prefix="halyard-body")


def parse_body(adapter: TypeAdapter, body: bytes) -> Any:
    """JSON bytes -> the validated model; raises RequestValidationError with
    the errors FastAPI itself reports (locations under "body")."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", err.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": err.msg}}], body=err.doc) from None
    try:
        return adapter.validate_python(data, from_attributes=True)
    except ValidationError as err:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in err.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None


def _is_json(request: Request) -> bool:
    """FastAPI's own test: an application/json or application/*+json content type."""
    value = request.headers.get("content-type")
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


_UNSET = object()


class _ParsedRequest(Request):
    """A request whose JSON body may already be parsed and validated (`parsed`)."""

    parsed: Any = _UNSET

    async def json(self) -> Any:
        return await super().json() if self.parsed is _UNSET else self.parsed


class OffLoopBodyRoute(APIRoute):
    """An APIRoute whose large JSON bodies are parsed and validated on a thread."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        model = self.body_field.field_info.annotation if self.body_field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handler
        adapter = TypeAdapter(model)

        async def route(request: Request):
            if not _is_json(request):
                return await handler(request)
            parsed = _ParsedRequest(request.scope, request.receive)
            body = await parsed.body()
            if len(body) > THREAD_BYTES:
                parsed.parsed = await asyncio.get_running_loop().run_in_executor(_pool, parse_body, adapter, body)
            return await handler(parsed)

        return route
