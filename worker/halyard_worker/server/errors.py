"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}`.

Every failure the server returns goes through `APIError`, including FastAPI's
request validation (mapped to 400 with the offending parameter named) and
malformed JSON, so clients never see FastAPI's default 422 body.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("halyard_worker.server")

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_server_error",
    503: "service_unavailable",
}


class APIError(Exception):
    """A failure to report to the client with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": TYPES.get(status, "error"),
                      "param": param, "code": code}}


def error_response(err: APIError) -> JSONResponse:
    body = error_body(err.status, err.message, err.param, err.code)
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def _param_of(loc: tuple) -> str | None:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part and not str(part).startswith(("function-", "union[", "list[", "str", "int")):
            text += f".{part}" if text else str(part)
    return text or None


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error as (message, param)."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "invalid JSON")
        return f"request body is not valid JSON: {detail}", None
    param = _param_of(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if param and param not in message:
        message = f"{param}: {message}"
    if first.get("type") == "missing" and param:
        message = f"{param} is required"
    return message, param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        message, param = validation_message(exc)
        return error_response(APIError(400, message, param))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception):
        log.exception("request failed")
        return error_response(APIError(500, f"internal error: {type(exc).__name__}: {exc}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return error_response(APIError(exc.status_code, str(exc.detail)))
