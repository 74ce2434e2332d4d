"""Frozen types at the engine boundary (server <-> engine, user <-> LLM).

Nothing here imports torch: the server imports these types freely.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from halyard_worker.options import DTYPES, INT4_DEFAULT_GROUP_SIZE, INT4_GROUP_SIZES, KERNEL_MODES, QUANTIZATIONS, one_of

FinishReason = str  # "stop" | "length" | "abort"


class InvalidParameter(ValueError):
    """A request parameter the engine cannot accept.

    `param` names the offending field (e.g. "temperature", "prompt"); the
    message says what is wrong and what is allowed.
    """

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidParameter(param, message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request. Validated at construction.

    `temperature` below `GREEDY_BELOW` means greedy (dividing logits by a
    tiny temperature overflows). `top_k <= 0` (0 or -1) disables top-k,
    `top_p == 1` disables nucleus sampling, `min_p == 0` disables min-p.
    `max_tokens=None` means "until the model's context is full".
    `stop` strings are matched across token boundaries and cut from the text
    (kept when `include_stop_str_in_output`). `logprobs=N` returns the
    sampled token's log-probability plus the N most likely tokens
    (raw model distribution, before penalties and temperature).
    `prompt_logprobs=N` returns, for every prompt token after the first, its
    log-probability given the tokens before it plus the N most likely tokens
    there (as vLLM: the first position has none); such a request computes
    its whole prompt (no prefix-cache reuse).
    `logit_bias` is `((token_id, bias), ...)`, bias in [-100, 100] added to
    the logits before sampling (OpenAI semantics; token ids are checked
    against the vocabulary when the request is added). `seed` is in
    [0, 2**63) and every count is bounded, so nothing a request carries can
    overflow the engine's tensors.
    """

    max_tokens: int | None = 16
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    logit_bias: tuple[tuple[int, float], ...] = ()

    MAX_LOGPROBS = 20
    MAX_SEED = 2**63 - 1
    MAX_TOKEN_ID = 2**31 - 1  # larger than any vocabulary; top_k beyond the vocab means "all"
    MAX_STOP = 16
    MAX_STOP_CHARS = 1024
    MAX_STOP_TOKEN_IDS = 1024
    MAX_LOGIT_BIAS = 1024
    GREEDY_BELOW = 1e-5

    def __post_init__(self):
        stop = self.stop
        if stop is None:
            stop = ()
        elif isinstance(stop, str):
            stop = (stop,)
        object.__setattr__(self, "stop", tuple(stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids or ()))
        bias = self.logit_bias.items() if isinstance(self.logit_bias, dict) else self.logit_bias or ()
        try:
            object.__setattr__(self, "logit_bias", tuple((t, b) for t, b in bias))
        except (TypeError, ValueError):
            raise InvalidParameter("logit_bias", "must map token ids to biases") from None
        self._validate()
        self._validate_lists()

    def _validate(self) -> None:
        _check(self.max_tokens is None or (_is_int(self.max_tokens) and self.max_tokens >= 1),
               "max_tokens", f"must be an integer >= 1 (or null), got {self.max_tokens!r}")
        _check(_is_int(self.min_tokens) and self.min_tokens >= 0,
               "min_tokens", f"must be an integer >= 0, got {self.min_tokens!r}")
        _check(self.max_tokens is None or self.min_tokens <= self.max_tokens,
               "min_tokens", f"must be <= max_tokens ({self.max_tokens}), got {self.min_tokens}")
        _check(_is_num(self.temperature) and 0 <= self.temperature <= 100,
               "temperature", f"must be in [0, 100] (0 = greedy), got {self.temperature!r}")
        _check(_is_num(self.top_p) and 0 < self.top_p <= 1,
               "top_p", f"must be in (0, 1], got {self.top_p!r}")
        _check(_is_int(self.top_k) and -1 <= self.top_k <= self.MAX_TOKEN_ID,
               "top_k", f"must be an integer in [-1, {self.MAX_TOKEN_ID}] (0 or -1 disables), "
               f"got {self.top_k!r}")
        _check(_is_num(self.min_p) and 0 <= self.min_p <= 1,
               "min_p", f"must be in [0, 1], got {self.min_p!r}")
        _check(_is_num(self.repetition_penalty) and 0 < self.repetition_penalty <= 10,
               "repetition_penalty", f"must be in (0, 10] (1 disables), got {self.repetition_penalty!r}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            _check(_is_num(value) and -2 <= value <= 2, name, f"must be in [-2, 2], got {value!r}")
        _check(self.seed is None or (_is_int(self.seed) and 0 <= self.seed <= self.MAX_SEED),
               "seed", f"must be an integer in [0, 2**63 - 1] or null, got {self.seed!r}")
        _check(self.logprobs is None or (_is_int(self.logprobs) and 0 <= self.logprobs <= self.MAX_LOGPROBS),
               "logprobs", f"must be an integer in [0, {self.MAX_LOGPROBS}] or null, got {self.logprobs!r}")
        _check(self.prompt_logprobs is None
               or (_is_int(self.prompt_logprobs) and 0 <= self.prompt_logprobs <= self.MAX_LOGPROBS),
               "prompt_logprobs",
               f"must be an integer in [0, {self.MAX_LOGPROBS}] or null, got {self.prompt_logprobs!r}")

    def _validate_lists(self) -> None:
        _check(len(self.stop) <= self.MAX_STOP and all(
            isinstance(s, str) and 0 < len(s) <= self.MAX_STOP_CHARS for s in self.stop),
            "stop", f"must be at most {self.MAX_STOP} non-empty strings of at most "
            f"{self.MAX_STOP_CHARS} characters")
        _check(len(self.stop_token_ids) <= self.MAX_STOP_TOKEN_IDS and all(
            _is_int(t) and 0 <= t <= self.MAX_TOKEN_ID for t in self.stop_token_ids),
            "stop_token_ids", f"must be at most {self.MAX_STOP_TOKEN_IDS} token ids in "
            f"[0, {self.MAX_TOKEN_ID}]")
        _check(len(self.logit_bias) <= self.MAX_LOGIT_BIAS and all(
            _is_int(t) and 0 <= t <= self.MAX_TOKEN_ID and _is_num(b) and -100 <= b <= 100
            for t, b in self.logit_bias),
            "logit_bias", f"must map at most {self.MAX_LOGIT_BIAS} token ids to biases in [-100, 100]")

    @property
    def greedy(self) -> bool:
        return self.temperature < self.GREEDY_BELOW


@dataclass(frozen=True)
class TokenLogprob:
    """One token with its log-probability (natural log) and decoded text."""

    token_id: int
    token: str
    logprob: float


@dataclass(frozen=True)
class LogprobEntry:
    """Log-probabilities at one generated position: the sampled token and
    the `SamplingParams.logprobs` most likely tokens (highest first)."""

    sampled: TokenLogprob
    top: tuple[TokenLogprob, ...]


@dataclass(frozen=True)
class RequestOutput:
    """A snapshot of one request, cumulative since it started.

    `token_ids`/`text` are everything generated so far; `new_token_ids`/
    `new_text` are what changed since the previous snapshot. `text` never
    ends in a broken UTF-8 character, and text that might still turn into a
    stop string is held back until it is decided. When `finished` is true,
    `finish_reason` is "stop" (EOS, stop token or stop string), "length"
    (max_tokens or the context limit), "abort", or "error" (this request
    alone failed inside the engine; `error` says why, others are unaffected). With
    `SamplingParams.prompt_logprobs`, `prompt_logprobs` has one entry per
    prompt token (None for the first) once the whole prompt is computed.
    """

    request_id: str
    prompt: str | None
    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    new_token_ids: tuple[int, ...] = ()
    new_text: str = ""
    finished: bool = False
    finish_reason: FinishReason | None = None
    logprobs: tuple[LogprobEntry, ...] | None = None
    new_logprobs: tuple[LogprobEntry, ...] | None = None
    num_cached_tokens: int = 0
    stop_reason: str | int | None = None
    prompt_logprobs: tuple[LogprobEntry | None, ...] | None = None
    error: str | None = None


@dataclass(frozen=True)
class EngineStats:
    """Engine counters for metrics. Token counts are cumulative totals."""

    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0  # fraction of KV blocks in use, 0..1
    kv_capacity_tokens: int = 0
    num_preemptions_total: int = 0
    prefix_cache_queries_total: int = 0  # prompt tokens looked up in the prefix cache
    prefix_cache_hits_total: int = 0  # of those, tokens served from the cache
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    prefill_tokens_total: int = 0  # tokens the scheduler gave prefill (prompt chunks, recomputes)
    prefill_budget_tokens_total: int = 0  # per step: token budget minus decode tokens, summed


@dataclass(frozen=True)
class EngineConfig:
    """Engine construction arguments, validated once.

    `model` is a directory, `file:///path`, or `hf://org/repo`.
    `kv_cache_memory` is the KV budget in bytes on CPU (default 256 MiB);
    on CUDA the budget is `gpu_memory_utilization` of free memory after
    loading the weights. `quantization_calibration` texts turn on
    activation-aware (AWQ-style) scaling of the quantized weights;
    "int4-awq" is int4 with that scaling (built-in texts when none are given).
    `quantization_group_size` (32, 64 or 128) is how many input weights share
    one int4 scale and zero when float weights are quantized (a pre-quantized
    checkpoint keeps its own groups). `max_model_len=None` takes the model's
    `max_position_embeddings`.
    """

    model: str
    dtype: str = "auto"
    quantization: str | None = None
    device: str = "cpu"
    max_model_len: int | None = None
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 2048
    block_size: int = 16
    kv_cache_memory: int | None = None
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool = True
    seed: int = 0
    tokenizer: str | None = None
    quantization_calibration: tuple[str, ...] = ()  # texts for AWQ-style scaling (int8/int4/int4-awq)
    quantization_group_size: int = INT4_DEFAULT_GROUP_SIZE  # int4: input weights per scale/zero
    kernels: str = "auto"  # hot-path ops: "auto" (CUDA kernels when usable), "cupy", "torch"
    enforce_eager: bool = False  # no CUDA graphs: every decode step launches its kernels one by one
    tensor_parallel_size: int = 1  # ranks (processes, one GPU each) the model is split over

    def __post_init__(self):
        _check(isinstance(self.model, str) and bool(self.model), "model", "must be a path or URI")
        _check(self.dtype in DTYPES, "dtype", f"must be {one_of(DTYPES)}, got {self.dtype!r}")
        _check(self.quantization is None or self.quantization in QUANTIZATIONS,
               "quantization", f"must be {one_of(QUANTIZATIONS)}, got {self.quantization!r}")
        if self.quantization == "none":
            object.__setattr__(self, "quantization", None)
        _check(self.quantization_group_size in INT4_GROUP_SIZES and _is_int(self.quantization_group_size),
               "quantization_group_size",
               f"must be {one_of(tuple(map(str, INT4_GROUP_SIZES)))}, got {self.quantization_group_size!r}")
        _check(isinstance(self.enforce_eager, bool), "enforce_eager",
               f"must be true or false, got {self.enforce_eager!r}")
        _check(self.kernels in KERNEL_MODES, "kernels", f"must be {one_of(KERNEL_MODES)}, got {self.kernels!r}")
        _check(self.device in ("cpu", "cuda") or str(self.device).startswith("cuda:"),
               "device", f"must be cpu or cuda, got {self.device!r}")
        for name in ("max_num_seqs", "max_num_batched_tokens", "block_size", "tensor_parallel_size"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, f"must be an integer >= 1, got {value!r}")
        _check(self.max_model_len is None or (_is_int(self.max_model_len) and self.max_model_len >= 1),
               "max_model_len", f"must be an integer >= 1, got {self.max_model_len!r}")
        _check(self.kv_cache_memory is None or (_is_int(self.kv_cache_memory) and self.kv_cache_memory > 0),
               "kv_cache_memory", f"must be a positive number of bytes, got {self.kv_cache_memory!r}")
        _check(_is_num(self.gpu_memory_utilization) and 0 < self.gpu_memory_utilization <= 1,
               "gpu_memory_utilization", f"must be in (0, 1], got {self.gpu_memory_utilization!r}")
