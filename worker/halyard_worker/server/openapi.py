"""Make `/openapi.json` say what the server does.

FastAPI documents a 422 that this server never returns (validation is a 400
with an OpenAI error body) and nothing of 401/404/413/429/503. This rewrites
each operation's responses from one table, marks the event-stream variant of
the generation routes, declares `/metrics` as Prometheus text and adds the
bearer security scheme when an API key is configured.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from halyard_worker.server.auth import OPEN_PATHS

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}
ERROR_TEXT = {
    400: "Invalid request: `error.param` names the JSON path of the offending field",
    401: "Missing or wrong API key",
    404: "Unknown model",
    413: "Request body larger than --max-request-bytes",
    429: "Admission queue full (--max-queue); retry after `Retry-After` seconds",
    500: "Internal error; the body carries a request id, the server log the details",
    503: "Model loading, engine stopped or server draining; retry another replica",
}
GENERATION = ("/v1/completions", "/v1/chat/completions")
TOKENIZER = ("/tokenize", "/detokenize")


def _errors(path: str, has_key: bool) -> list[int]:
    codes = [500]
    if path in GENERATION + TOKENIZER:
        codes += [400, 404, 413, 503]
    if path in GENERATION:
        codes.append(429)
    if path in ("/health", "/ready"):
        codes.append(503)
    if has_key and path not in OPEN_PATHS:
        codes.append(401)
    return sorted(codes)


def _error_response(code: int) -> dict:
    return {"description": ERROR_TEXT[code], "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def _fix_operation(path: str, op: dict, has_key: bool) -> None:
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    for code in _errors(path, has_key):
        responses[str(code)] = _error_response(code)
    ok = responses.setdefault("200", {"description": "OK"})
    if path in GENERATION:
        ok["content"] = {"application/json": {"schema": {"type": "object"}},
                         "text/event-stream": {"schema": {"type": "string"}}}
        ok["description"] = "The completion, or with `stream: true` server-sent events ending in `data: [DONE]`"
    elif path == "/metrics":
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
        ok["description"] = "Prometheus text exposition (vLLM metric names)"
    if has_key and path not in OPEN_PATHS:
        op["security"] = [{"bearer": []}]


def install_openapi(app: FastAPI, has_key: bool) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path, item in doc.get("paths", {}).items():
                for op in item.values():
                    _fix_operation(path, op, has_key)
            schemas = doc.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            if has_key:
                doc.setdefault("components", {})["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
