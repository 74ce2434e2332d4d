"""The server's view of the model: engine, tokenizer, chat template, limits.

Only this module knows how the engine is constructed; handlers see a
`ModelRuntime` and the `EngineClient` protocol (`generate`, `abort`,
`stats`, ...), which `AsyncEngine` implements. Tokenization and chat
templating run on one thread of the runtime's own (`off_loop`), never on the
event loop, so a large prompt cannot stall probes or streams.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol, TypeVar

from halyard_worker.engine.types import EngineStats, RequestOutput, SamplingParams

from halyard_worker.server.config import ServerConfig
from halyard_worker.server.errors import APIError
from halyard_worker.server.metrics import EngineGauges
from halyard_worker.server.tokens import OverlongPrompt, encode_prompt


T = TypeVar("T")


class EngineClient(Protocol):
    """What the server needs of the engine (`AsyncEngine` is the implementation).

    `generate` yields cumulative `RequestOutput` snapshots until one is
    `finished`; it raises `InvalidParameter` before any output for a prompt
    or parameters the engine cannot take, and `RequestFailed` when this
    request alone failed inside the engine. `request_id` must be unique
    among live requests (the server generates them). `abort` ends a request:
    its iterator finishes with finish_reason "abort".
    """

    @property
    def is_running(self) -> bool: ...

    @property
    def max_model_len(self) -> int: ...

    def generate(self, request_id: str, prompt: list[int], params: SamplingParams,
                 priority: int = 0) -> AsyncIterator[RequestOutput]: ...

    def abort(self, request_id: str) -> None: ...

    def stats(self) -> EngineStats: ...

    def shutdown(self) -> None: ...


@dataclass
class ModelRuntime:
    """Live handles: `engine`, `tokenizer` (HF fast tokenizer, used only on
    the runtime's tokenizer thread), `max_model_len` (tokens, prompt + completion)."""

    engine: EngineClient
    tokenizer: Any
    max_model_len: int
    chat_template: str | None = None
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="halyard-tokenizer"), repr=False)

    async def off_loop(self, fn: Callable[..., T], *args) -> T:
        """Run `fn(*args)` (tokenizing, templating) on the tokenizer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def encode(self, text: str) -> list[int] | OverlongPrompt:
        """Token ids of a prompt (only the count of one too long for the context)."""
        return encode_prompt(self.tokenizer, text, True, self.max_model_len)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int] | OverlongPrompt:
        """Messages -> prompt token ids through the chat template (400 when none)."""
        template = self.chat_template or getattr(self.tokenizer, "chat_template", None)
        if not template:
            raise APIError(400, "this model has no chat template; start the server with "
                                "--chat-template FILE or use /v1/completions", param="messages")
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                chat_template=template)
        except Exception as err:  # template errors are the request's or the template's
            raise APIError(400, f"chat template failed on these messages: {err}", param="messages")
        return encode_prompt(self.tokenizer, text, False, self.max_model_len)

    def gauges(self) -> EngineGauges:
        s = self.engine.stats()
        return EngineGauges(
            running=s.num_running, waiting=s.num_waiting, kv_usage=s.kv_cache_usage,
            kv_capacity_tokens=s.kv_capacity_tokens, preemptions=s.num_preemptions_total,
            prefix_queries=s.prefix_cache_queries_total, prefix_hits=s.prefix_cache_hits_total,
            prefill_tokens=s.prefill_tokens_total, prefill_budget_tokens=s.prefill_budget_tokens_total)


def _model_max_len(model_dir: str) -> int:
    """The model's own context length, or 2048 before an hf:// model is fetched."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return 2048
    config = json.loads(path.read_text())
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def local_model(config: ServerConfig) -> str:
    """The local path of `--model`: remote sources are fetched into `--model-cache`
    (a no-op when the pod's init container already did)."""
    from halyard_worker.model.fetch import resolve
    from halyard_worker.model.source import parse_model_uri

    cache = Path(config.model_cache) if config.model_cache else None
    return str(resolve(parse_model_uri(config.model, config.revision), cache))


def engine_config(config: ServerConfig, model: str | None = None):
    """ServerConfig -> the engine's EngineConfig (engine-side validation applies)."""
    from halyard_worker.engine.types import EngineConfig

    kwargs = dict(
        model=model or config.model, dtype=config.dtype, quantization=config.quantization,
        quantization_calibration=config.calibration, quantization_group_size=config.quantization_group_size,
        device=_device(config.device), max_model_len=config.max_model_len,
        max_num_seqs=config.max_num_seqs, block_size=config.block_size,
        kv_cache_memory=config.kv_cache_memory, enable_prefix_caching=config.prefix_caching,
        kernels=config.kernels, enforce_eager=config.enforce_eager,
        tensor_parallel_size=config.tensor_parallel_size,
    )
    if config.max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = config.max_num_batched_tokens
    if config.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = config.gpu_memory_utilization
    return EngineConfig(**kwargs)


def build_runtime(config: ServerConfig) -> ModelRuntime:
    """Load the model and start the engine thread (blocking, seconds to minutes)."""
    from halyard_worker.engine.async_engine import AsyncEngine

    from halyard_worker.engine.setup import load_tokenizer

    model = local_model(config)
    engine = AsyncEngine(engine_config(config, model))
    engine.start()
    # A tokenizer instance of our own: the engine thread uses its instance
    # concurrently, and Rust tokenizers are not meant to be shared that way.
    # A GGUF file's tokenizer lives in the file's metadata.
    tokenizer = load_tokenizer(model if model.endswith(".gguf") else engine.tokenizer.name_or_path)
    max_len = engine.max_model_len
    return ModelRuntime(engine=engine, tokenizer=tokenizer, max_model_len=int(max_len),
                        chat_template=config.chat_template)
