"""Run the app on uvicorn with Halyard's own signal handling.

uvicorn's handlers would stop accepting and close connections at once. Here
SIGTERM/SIGINT start the drain instead: `/ready` turns 503, new requests get
503, in-flight requests finish (or end with finish_reason "drain" at the
deadline), and only then is uvicorn told to exit. A second signal skips the
rest of the drain. The process exits 0 after a clean drain. A signal while
the model is still loading exits at once (the load runs on a daemon thread
and is abandoned).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import uvicorn

from halyard_worker.server.app import build_app
from halyard_worker.server.config import ServerConfig
from halyard_worker.server.runtime import _model_max_len, build_runtime
from halyard_worker.server.state import AppState
from halyard_worker.termination import MODEL_LOAD_FAILED, write_termination_message

log = logging.getLogger("halyard_worker.server")


# Idle HTTP keep-alive (uvicorn's default, made explicit): a proxy in front (the
# router) must let its pooled connections idle less than this.
KEEP_ALIVE_S = 5


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (we install ours on the loop)."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return None

    def capture_signals(self):  # uvicorn >= 0.29
        from contextlib import nullcontext

        return nullcontext()


def _on_signal(state: AppState, server: _Server) -> None:
    if state.drainer.state != "serving":
        log.warning("second signal: aborting in-flight requests now")
        state.gate.drain_expired = True
        state.gate.abort_all()
        state.drainer.timeout = 0
        return
    task = state.drainer.start()
    task.add_done_callback(lambda _t: setattr(server, "should_exit", True))


async def serve_async(config: ServerConfig, on_state=lambda state: None) -> int:
    max_len = config.max_model_len or _model_max_len(config.model)
    state = AppState(config, max_len)
    on_state(state)
    app = build_app(state, load=lambda: build_runtime(config))
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level="info",
                               timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_S, access_log=False)
    server = _Server(uv_config)
    state.on_fatal = lambda: setattr(server, "should_exit", True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, state, server)
    await server.serve()
    _shutdown_engine(state)
    if state.load_error:
        write_termination_message(MODEL_LOAD_FAILED, f"model {config.model!r} failed to load: {state.load_error}")
        return 1
    return 0


def _shutdown_engine(state: AppState) -> None:
    if state.runtime is not None:
        state.runtime.engine.shutdown()


def serve(config: ServerConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    states: list[AppState] = []
    code = asyncio.run(serve_async(config, states.append))
    if states and states[0].loading:
        log.info("stopped while the model was loading")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # do not wait for (or finalize under) the abandoned load thread
    return code
