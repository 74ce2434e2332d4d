"""Large JSON request bodies are parsed and validated off the event loop.

FastAPI parses a body with `json.loads` and validates it with pydantic on the
event loop; for a multi-megabyte prompt that takes long enough to delay
`/health`. `OffLoopBodyRoute` (the app's route class) does both on a worker
thread when a JSON body is larger than `THREAD_BYTES`, then hands FastAPI the
validated model (pydantic returns a model instance as it is, so FastAPI's own
validation costs nothing). A worker thread alone does not free the loop: both
steps hold the GIL from start to end. So the body is parsed with
pydantic-core's JSON parser (1-3 ms for 5 MB, `json.loads` 7-16 ms)
and `json.loads` decides every body that parser refuses (lone surrogate
escapes, encodings other than UTF-8, deep nesting, invalid JSON): the value is
`json.loads`'s whenever there is one. Failures reach the client as FastAPI's
own: a body that does not parse raises `json.loads`'s error from
`Request.json()` inside FastAPI's handler, and a validation failure raises the
`RequestValidationError` FastAPI would (same errors, same body), so the
client gets the same 400 either way. Small bodies take FastAPI's path unchanged.
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
from pydantic_core import from_json

THREAD_BYTES = 64 * 1024  # bodies above this are parsed on a worker thread
_pool = ThreadPoolExecutor(2, thread_name_prefix="halyard-body")


def loads(body: bytes) -> Any:
    """The JSON value of `body` as `json.loads` gives it (or its error)."""
    try:
        return from_json(body)
    except ValueError:  # json.loads accepts some of these and words the errors FastAPI reports
        return json.loads(body)


def parse_body(adapter: TypeAdapter, body: bytes) -> Any:
    """JSON bytes -> the validated model, or `_Unparsed` when the bytes are not
    JSON; raises RequestValidationError with the errors FastAPI itself reports
    (locations under "body")."""
    try:
        data = loads(body)
    except Exception as err:  # FastAPI maps it when Request.json() raises it
        return _Unparsed(err)
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


class _Unparsed:
    """A body that is not JSON: `error` is what parsing it raised."""

    def __init__(self, error: Exception):
        self.error = error


class _ParsedRequest(Request):
    """A request whose JSON body may already be parsed and validated (`parsed`)."""

    parsed: Any = _UNSET

    async def json(self) -> Any:
        if isinstance(self.parsed, _Unparsed):
            raise self.parsed.error
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
