"""`halyard-worker serve` flags, parsed once into a frozen `ServerConfig`."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from halyard_worker.kernels.ops import add_kernels_argument
from halyard_worker.options import DTYPES, INT4_DEFAULT_GROUP_SIZE, INT4_GROUP_SIZES, QUANTIZATIONS

API_KEY_ENV = "HALYARD_API_KEY"
DEFAULT_MAX_REQUEST_BYTES = 8 * 2**20


@dataclass(frozen=True)
class ServerConfig:
    """Everything the worker process needs, validated at parse time.

    Invariants: `port` in 1..65535; `max_queue` >= 0 (requests allowed to wait
    beyond the running batch); `drain_timeout` >= 0 seconds; at most one of
    `gpu_memory_utilization` (fraction in (0, 1]) and `kv_cache_memory`
    (bytes) is set; `quantization` is None or "int8"/"int4"/"int4-awq";
    `calibration` holds the texts read from --calibration-text (may be empty);
    `quantization_group_size` is one of 32, 64, 128;
    `api_key` is None or non-empty; `max_request_bytes` > 0.
    """

    model: str  # a local path, or an hf:// / s3:// URI fetched at load time (model/source.py)
    served_model_name: str
    revision: str | None = None  # hf:// only
    model_cache: str | None = None  # where remote models are fetched to (the pod's cache volume)
    host: str = "0.0.0.0"
    port: int = 8000
    dtype: str = "auto"
    quantization: str | None = None
    calibration: tuple[str, ...] = ()
    quantization_group_size: int = INT4_DEFAULT_GROUP_SIZE  # int4: input weights per scale/zero
    max_model_len: int | None = None
    max_num_seqs: int = 64
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory: int | None = None
    api_key: str | None = None
    chat_template: str | None = None  # template text (read from the file at parse time)
    max_queue: int = 256
    drain_timeout: float = 30.0
    device: str = "auto"
    block_size: int = 16
    prefix_caching: bool = True
    kernels: str = "auto"  # hot-path ops: auto (CUDA kernels when usable), cupy, torch
    enforce_eager: bool = False  # no CUDA graphs for decode steps
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # larger request bodies get 413
    tensor_parallel_size: int = 1  # ranks (one process and one GPU each) the model is split over


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value


def _group_size(text: str) -> int:
    sizes = ", ".join(map(str, INT4_GROUP_SIZES))
    try:
        value = int(text)
    except ValueError:
        value = None
    if value not in INT4_GROUP_SIZES:
        raise argparse.ArgumentTypeError(f"must be one of {sizes} (the int4 kernel's group sizes), got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {text}")
    return value


_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_bytes(text: str) -> int:
    """'8Gi' -> 8589934592; '500M' -> 500000000; '1024' -> 1024."""
    raw = text.strip().lower().removesuffix("b")
    digits = raw.rstrip("kmgi")
    unit = raw[len(digits):]
    if unit not in _UNITS or not digits:
        raise argparse.ArgumentTypeError(f"expected bytes such as 8Gi or 500M, got {text!r}")
    value = int(float(digits) * _UNITS[unit])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `halyard-worker serve` (the operator passes these)."""
    add = parser.add_argument
    add("--model", required=True, help="model directory, .gguf file, file:///path, hf://org/repo[@rev]"
        "[/file.gguf], s3://bucket/prefix or pvc://claim/path")
    add("--revision", help="branch, tag or commit of an hf:// model")
    add("--model-cache", help="directory remote models are fetched into (default: $HALYARD_MODEL_CACHE "
        "or ~/.cache/halyard/model-cache); `halyard-worker fetch --cache` fills the same layout")
    add("--served-model-name", help="name clients use in `model` (default: the directory name)")
    add("--host", default="0.0.0.0", help="bind address (the pod IP)")
    add("--port", type=_port, default=8000)
    add("--dtype", choices=DTYPES, default="auto")
    add("--quantization", choices=QUANTIZATIONS, default="none",
        help="weight-only quantization; int4-awq: int4 with activation-aware scales from --calibration-text")
    add("--calibration-text", metavar="FILE",
        help="UTF-8 text for activation-aware scaling (int4-awq, int8, int4); blank lines split it into "
             "samples (default for int4-awq: built-in English text)")
    add("--quantization-group-size", type=_group_size, default=INT4_DEFAULT_GROUP_SIZE, metavar="N",
        help=f"int4 / int4-awq: input weights sharing one scale and zero, one of "
             f"{', '.join(map(str, INT4_GROUP_SIZES))} (default {INT4_DEFAULT_GROUP_SIZE}; smaller is more "
             f"accurate and larger; a pre-quantized checkpoint keeps its own)")
    add("--max-model-len", type=_positive_int, help="context window in tokens (default: the model's)")
    add("--max-num-seqs", type=_positive_int, default=64, help="requests running at once")
    add("--max-num-batched-tokens", type=_positive_int, help="token budget per engine step")
    memory = parser.add_mutually_exclusive_group()
    memory.add_argument("--gpu-memory-utilization", type=_fraction,
                        help="fraction of device memory the engine may use")
    memory.add_argument("--kv-cache-memory", type=parse_bytes,
                        help="KV cache size in bytes (e.g. 4Gi); exclusive with --gpu-memory-utilization")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key", help="require `Authorization: Bearer KEY` on /v1 and tokenizer "
                      f"routes (visible in the process list: prefer --api-key-file or ${API_KEY_ENV})")
    keys.add_argument("--api-key-file", help=f"file holding the API key (else ${API_KEY_ENV})")
    add("--max-request-bytes", type=parse_bytes, default=DEFAULT_MAX_REQUEST_BYTES,
        help="largest request body accepted, e.g. 8Mi (larger ones get 413)")
    add("--chat-template", help="file with a Jinja chat template (default: the tokenizer's)")
    add("--max-queue", type=_non_negative_int, default=256,
        help="requests that may wait beyond the running batch; more get 429")
    add("--drain-timeout", type=_seconds, default=30.0,
        help="seconds in-flight requests may run after SIGTERM")
    add("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add("--block-size", type=_positive_int, default=16, help="tokens per KV cache block")
    add("--no-prefix-caching", action="store_true", help="disable prefix caching")
    add_kernels_argument(parser)
    add("--enforce-eager", action="store_true",
        help="run every decode step eagerly (no CUDA graphs captured at start-up)")
    add("--tensor-parallel-size", type=_positive_int, default=1,
        help="split the model over N ranks, one process per GPU (cuda:0..N-1; gloo on CPU); "
             "N must divide the model's attention heads")


def _read_template(path: str | None) -> str | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--chat-template: no such file {path!r}")
    return file.read_text()


def _read_calibration(path: str | None) -> tuple[str, ...]:
    """Samples of a calibration file: paragraphs (blank-line separated) joined
    into chunks of about 2,000 characters."""
    if path is None:
        return ()
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--calibration-text: no such file {path!r}")
    chunks, current = [], ""
    for para in file.read_text(encoding="utf-8").split("\n\n"):
        current = f"{current}\n\n{para}" if current else para
        if len(current) >= 2000:
            chunks.append(current)
            current = ""
    chunks += [current] if current.strip() else []
    if not chunks:
        raise ValueError(f"--calibration-text: {path!r} is empty")
    return tuple(chunks[:16])


class ModelLocationError(ValueError):
    """`--model` names nothing the worker can load (a ModelLoadFailed, not a flag typo)."""


def _check_model(model: str, revision: str | None):
    """Parse the model location; a local one must exist and be loadable now."""
    from halyard_worker.model.fetch import check_local
    from halyard_worker.model.source import InvalidModelSource, parse_model_uri

    try:
        source = parse_model_uri(model, revision)
    except InvalidModelSource as err:
        raise ModelLocationError(str(err)) from err
    if source.scheme == "local":
        try:
            check_local(Path(source.path).expanduser(), model)
        except FileNotFoundError as err:
            raise ModelLocationError(str(err)) from err
        return source, str(Path(source.path).expanduser())
    return source, model


def _api_key(args: argparse.Namespace) -> str | None:
    """--api-key, else --api-key-file's contents, else $HALYARD_API_KEY; None for none."""
    if args.api_key is not None:
        key, source = args.api_key, "--api-key"
    elif args.api_key_file is not None:
        file = Path(args.api_key_file)
        if not file.is_file():
            raise ValueError(f"--api-key-file: no such file {args.api_key_file!r}")
        key, source = file.read_text().strip(), "--api-key-file"
    else:
        key, source = os.environ.get(API_KEY_ENV), API_KEY_ENV
        if key is None:
            return None
    if not key.strip():
        raise ValueError(f"{source}: the API key is empty")
    return key.strip()


def _default_name(source, model: str) -> str:
    """The repo id, or the directory (file) name without .gguf."""
    if source.scheme == "local":
        return Path(model).resolve().name.removesuffix(".gguf")
    return source.default_name


def _check_tensor_parallel(model: str, size: int) -> None:
    """A local Hugging Face directory's heads are known now: refuse a size that
    cannot split them before anything loads (other models: when they load)."""
    import json

    from halyard_worker.model.config import parse_config
    from halyard_worker.model.tp_plan import check_tensor_parallel

    file = Path(model) / "config.json"
    if size == 1 or not file.is_file():
        return
    try:
        config = parse_config(json.loads(file.read_text()))
    except ValueError:  # an unusable config.json is the model load's to report
        return
    check_tensor_parallel(config, size)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Build the frozen config; raises ValueError naming the flag on bad input."""
    source, model = _check_model(args.model, args.revision)
    _check_tensor_parallel(model, args.tensor_parallel_size)
    return ServerConfig(
        model=model,
        served_model_name=args.served_model_name or _default_name(source, model),
        revision=source.revision,
        model_cache=args.model_cache,
        host=args.host,
        port=args.port,
        dtype=args.dtype,
        quantization=None if args.quantization == "none" else args.quantization,
        calibration=_read_calibration(args.calibration_text),
        quantization_group_size=args.quantization_group_size,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_memory=args.kv_cache_memory,
        api_key=_api_key(args),
        chat_template=_read_template(args.chat_template),
        max_queue=args.max_queue,
        drain_timeout=args.drain_timeout,
        device=args.device,
        block_size=args.block_size,
        prefix_caching=not args.no_prefix_caching,
        kernels=args.kernels,
        enforce_eager=args.enforce_eager,
        max_request_bytes=args.max_request_bytes,
        tensor_parallel_size=args.tensor_parallel_size,
    )
