"""The FastAPI app: routes are thin shims into completions/chat/state."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from halyard_worker.server.auth import ApiKeyMiddleware
from halyard_worker.server.body import OffLoopBodyRoute
from halyard_worker.server.chat import create_chat_completion
from halyard_worker.server.completions import create_completion
from halyard_worker.server.errors import APIError, install_error_handlers
from halyard_worker.server.middleware import BodyLimitMiddleware, ServerErrorCounter
from halyard_worker.server.openapi import install_openapi
from halyard_worker.server.schemas import (ChatCompletionRequest, CompletionRequest,
                                           DetokenizeRequest, TokenizeRequest)
from halyard_worker.server.state import AppState

log = logging.getLogger("halyard_worker.server")


def build_app(state: AppState, load=None) -> FastAPI:
    """The app over `state`; `load()` (blocking) returns the ModelRuntime when
    the model is loaded in the background after the server starts."""
    app = FastAPI(title="Halyard worker", lifespan=_lifespan(state, load))
    app.router.route_class = OffLoopBodyRoute  # large JSON bodies are parsed on a thread
    app.state.halyard = state
    install_error_handlers(app)
    # added innermost first: count 5xx (outermost) -> API key -> body limit -> app
    app.add_middleware(BodyLimitMiddleware, max_bytes=state.config.max_request_bytes)
    if state.config.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=state.config.api_key)
    app.add_middleware(ServerErrorCounter, count=state.metrics.server_error)
    _probe_routes(app, state)
    _api_routes(app, state)
    install_openapi(app, has_key=bool(state.config.api_key))
    return app


def _lifespan(state: AppState, load):
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        task = None
        if load is not None and state.runtime is None:
            task = asyncio.ensure_future(_load(state, load))
        yield
        if task is not None:
            task.cancel()
    return lifespan


def _in_daemon_thread(fn) -> asyncio.Future:
    """`fn()` on a daemon thread: unlike the default executor, a shutdown
    (SIGTERM while the model loads) neither waits for it nor is held by it."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run():
        try:
            result = fn()
        except BaseException as err:  # handed to the awaiting task
            loop.call_soon_threadsafe(_settle, future, None, err)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)
    threading.Thread(target=run, name="halyard-model-load", daemon=True).start()
    return future


def _settle(future: asyncio.Future, result, err) -> None:
    if future.cancelled():
        return
    if err is not None:
        future.set_exception(err)
    else:
        future.set_result(result)


async def _load(state: AppState, load) -> None:
    started = time.monotonic()
    state.loading = True
    try:
        runtime = await _in_daemon_thread(load)
    except asyncio.CancelledError:
        raise  # shutting down mid-load: `loading` stays set and the process exits at once
    except Exception as err:
        state.loading = False
        state.load_error = f"{type(err).__name__}: {err}"
        log.exception("model failed to load")
        state.on_fatal()
        return
    state.loading = False
    state.set_runtime(runtime)
    log.info("model %s loaded in %.1fs", state.config.served_model_name, time.monotonic() - started)


def _probe_routes(app: FastAPI, state: AppState) -> None:
    @app.get("/health")
    async def health():
        if state.load_error:
            return JSONResponse({"status": "error", "error": state.load_error}, status_code=503)
        if state.runtime is not None and not state.runtime.engine.is_running:
            return JSONResponse({"status": "error", "error": "engine loop stopped"}, status_code=503)
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        reason = state.not_ready_reason()
        if reason:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics():
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _api_routes(app: FastAPI, state: AppState) -> None:
    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [state.model_card()]}

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request):
        state.require_serving()
        return await create_completion(state, request, req)

    @app.post("/v1/chat/completions")
    async def chat(req: ChatCompletionRequest, request: Request):
        state.require_serving()
        return await create_chat_completion(state, request, req)

    @app.post("/tokenize")
    async def tokenize(req: TokenizeRequest):
        runtime = state.require_runtime()
        if req.model is not None:
            state.check_model(req.model)
        if (req.prompt is None) == (req.messages is None):
            raise APIError(400, "give exactly one of prompt or messages", param="prompt")
        tokens = await runtime.off_loop(_tokenize, runtime, req)
        return {"tokens": tokens, "count": len(tokens), "max_model_len": runtime.max_model_len}

    @app.post("/detokenize")
    async def detokenize(req: DetokenizeRequest):
        runtime = state.require_runtime()
        if req.model is not None:
            state.check_model(req.model)
        vocab = len(runtime.tokenizer)
        bad = [t for t in req.tokens if t >= vocab]
        if bad:
            raise APIError(400, f"tokens: id {bad[0]} is outside the vocabulary (0..{vocab - 1})",
                           param="tokens")
        return {"prompt": await runtime.off_loop(runtime.decode, req.tokens)}


def _tokenize(runtime, req: TokenizeRequest) -> list[int]:
    if req.messages is not None:
        msgs = [{"role": m.role, "content": m.text()} for m in req.messages]
        return runtime.render_chat(msgs, req.add_generation_prompt)
    return list(runtime.tokenizer.encode(req.prompt, add_special_tokens=req.add_special_tokens))
