"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}`.

Every failure the server returns goes through `APIError`, including FastAPI's
request validation (mapped to 400 with the offending parameter named) and
malformed JSON, so clients never see FastAPI's default 422 body.
"""
from __future__ import annotations

import logging
import uuid

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


def param_path(loc: tuple, body) -> str | None:
    """The JSON path the client sent for a pydantic error location, e.g.
    ('body', 'messages', 0, 'function-after[..]', 'role') over the body ->
    'messages[0].role'. Parts naming union members or validators, which are
    not in the body, are skipped by walking the body itself."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    text, node = "", body
    for part in parts:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            text, node = f"{text}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            text, node = (f"{text}.{part}" if text else part), node[part]
        elif isinstance(part, str) and isinstance(node, dict) and not _is_member_tag(part):
            text, node = (f"{text}.{part}" if text else part), None  # a missing field
    return text or None


def _is_member_tag(part: str) -> bool:
    """pydantic's names for union members and validators (not body keys)."""
    return "[" in part or part in ("str", "int", "float", "bool", "list", "dict", "none",
                                   "constrained-int", "constrained-str", "literal")


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error as (message, param)."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    # a union reports one error per member: the deepest names what the client meant
    first = max(errors, key=lambda e: len(e.get("loc", ())))
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "invalid JSON")
        return f"request body is not valid JSON: {detail}", None
    loc = tuple(first.get("loc", ()))
    body = getattr(exc, "body", None)
    if loc == ("body",) and first.get("type") == "missing":
        return "the request body is empty: send a JSON object", None
    if loc == ("body",) or (len(loc) == 2 and not isinstance(body, dict)):
        return "the request body must be a JSON object", None
    param = param_path(loc, body)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing" and param:
        return f"{param} is required", param
    if param and not message.startswith(param):
        message = f"{param}: {message}"
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
    async def _internal(request: Request, exc: Exception):
        return error_response(internal_error(request.headers.get("x-request-id"), exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return error_response(APIError(exc.status_code, str(exc.detail), headers=exc.headers))


def internal_error(request_id: str | None, exc: BaseException) -> APIError:
    """Log the exception with a request id; the client gets only the id."""
    rid = request_id or uuid.uuid4().hex
    log.error("request %s failed: %s: %s", rid, type(exc).__name__, exc, exc_info=exc)
    return APIError(500, f"internal error (request id {rid}); the server log has the details",
                    code="internal_error")
