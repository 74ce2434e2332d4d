"""Per-app state: config, runtime (once loaded), admission gate, metrics, drain."""
from __future__ import annotations

import time

from halyard_worker.server.admission import Gate
from halyard_worker.server.config import ServerConfig
from halyard_worker.server.drain import Drainer
from halyard_worker.server.errors import APIError
from halyard_worker.server.metrics import EngineGauges, ServerMetrics
from halyard_worker.server.runtime import ModelRuntime

_IDLE = EngineGauges(0, 0, 0.0, 0, 0, 0, 0)


# KV cache usage from which the engine's waiting requests count as held back by memory.
KV_BOUND_USAGE = 0.8


class AppState:
    """Owned by one app. `runtime` is None until the model has loaded."""

    def __init__(self, config: ServerConfig, max_model_len: int, runtime: ModelRuntime | None = None):
        self.config = config
        self.runtime = runtime
        self.load_error: str | None = None
        self.loading = False  # the model is being loaded (in a daemon thread)
        self.on_fatal = lambda: None  # called when the model cannot load (the runner exits)
        self.created = int(time.time())
        self.metrics = ServerMetrics(config.served_model_name, max_model_len, config.max_queue,
                                     self._gauges)
        self.gate = Gate(config.max_num_seqs, config.max_queue, self._waiting, self.metrics.rejected)
        self.drainer = Drainer(self.gate, config.drain_timeout, lambda: self.metrics.draining.set(1))

    def set_runtime(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime

    def _gauges(self) -> EngineGauges:
        return self.runtime.gauges() if self.runtime else _IDLE

    def _waiting(self) -> int:
        """Requests the engine holds back for lack of KV cache. While the cache has
        room, waiting requests are only between steps (a burst just arrived, or
        the per-step token budget) and start within a step or two: not queued."""
        if not self.runtime:
            return 0
        gauges = self.runtime.gauges()
        return gauges.waiting if gauges.kv_usage >= KV_BOUND_USAGE else 0

    def not_ready_reason(self) -> str | None:
        if self.load_error:
            return f"model failed to load: {self.load_error}"
        if self.runtime is None:
            return "model is loading"
        if self.gate.draining:
            return "draining"
        return None

    def require_runtime(self) -> ModelRuntime:
        if self.runtime is None:
            raise APIError(503, "the model is still loading; retry shortly", code="loading",
                           headers={"Retry-After": "2"})
        return self.runtime

    def require_serving(self) -> ModelRuntime:
        """The runtime, or 503 while loading/draining (draining is counted as a rejection)."""
        runtime = self.require_runtime()
        if self.gate.draining:
            self.metrics.rejected("draining")
            raise APIError(503, "the server is draining (shutting down); retry on another replica",
                           code="draining", headers={"Retry-After": "1"})
        return runtime

    def check_model(self, name: str) -> None:
        if name != self.config.served_model_name:
            raise APIError(404, f"The model `{name}` does not exist; this server serves "
                                f"`{self.config.served_model_name}` (see GET /v1/models)",
                           param="model", code="model_not_found")

    def model_card(self) -> dict:
        max_len = self.runtime.max_model_len if self.runtime else None
        name = self.config.served_model_name  # never the model's path on disk
        return {"id": name, "object": "model", "created": self.created,
                "owned_by": "halyard", "root": name, "max_model_len": max_len}
