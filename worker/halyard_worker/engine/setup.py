"""Build the runner side from an `EngineConfig`: model, tokenizer, KV pool size."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import torch

from halyard_worker.engine.graph_plan import make_plan, scratch_bytes
from halyard_worker.engine.runner import ModelRunner, kv_bytes_per_block
from halyard_worker.engine.types import EngineConfig, InvalidParameter
from halyard_worker.model.config import ModelConfig
from halyard_worker.model.loader import choose_dtype, load_config, load_model, resolve_model_path

log = logging.getLogger(__name__)

DEFAULT_CPU_KV_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Built:
    """Everything the engine needs from the torch side."""

    tokenizer: object
    runner: ModelRunner
    model_config: ModelConfig
    max_model_len: int
    eos_token_ids: tuple[int, ...]
    num_blocks: int


def eos_token_ids(path, mc: ModelConfig, tokenizer) -> tuple[int, ...]:
    """EOS ids from config.json, generation_config.json and the tokenizer (union)."""
    ids = list(mc.eos_token_ids)
    gen = path / "generation_config.json"
    if gen.is_file():
        value = json.loads(gen.read_text()).get("eos_token_id")
        ids += value if isinstance(value, list) else ([value] if value is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return tuple(dict.fromkeys(int(i) for i in ids))


def load_tokenizer(path: str):
    """From a model directory, or from a GGUF file's metadata (vocabulary,
    merges, special tokens and chat template)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    file = Path(path)
    try:
        if file.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
        return AutoTokenizer.from_pretrained(path)
    except Exception as err:  # transformers raises many types for a bad directory
        raise FileNotFoundError(f"could not load a tokenizer from {path!r} (it needs tokenizer.json "
                                f"or tokenizer.model with tokenizer_config.json): {err}") from err


def choose_max_model_len(config: EngineConfig, model_config: ModelConfig) -> int:
    limit = model_config.max_position_embeddings
    if model_config.sliding_window:
        limit = min(limit, model_config.sliding_window)  # no sliding-window attention: stay inside it
    if config.max_model_len is None:
        return limit
    if config.max_model_len > limit:
        raise InvalidParameter("max_model_len", f"{config.max_model_len} exceeds the model's limit {limit}")
    return config.max_model_len


def kv_budget_bytes(config: EngineConfig, device: torch.device) -> int:
    """CPU: `kv_cache_memory` bytes. CUDA: `gpu_memory_utilization` of free memory
    (measured after the weights are loaded), less a reserve for activations."""
    if device.type == "cpu":
        return config.kv_cache_memory or DEFAULT_CPU_KV_BYTES
    if config.kv_cache_memory:
        return config.kv_cache_memory
    free, _ = torch.cuda.mem_get_info(device)
    return int(free * config.gpu_memory_utilization)


def activation_reserve(config: EngineConfig, mc: ModelConfig, dtype: torch.dtype) -> int:
    """Bytes for one step's activations (rough upper bound): the widest
    per-token tensors for the batch, plus float32 logits for the sampled rows."""
    elem = torch.empty(0, dtype=dtype).element_size()
    per_token = (4 * mc.hidden_size + 3 * mc.intermediate_size
                 + (mc.num_heads + 2 * mc.num_kv_heads) * mc.head_dim) * elem
    return config.max_num_batched_tokens * per_token + config.max_num_seqs * mc.vocab_size * 4 * 3


def install_ops(mode: str, device: torch.device, mc: ModelConfig | None = None,
                dtype: torch.dtype | None = None) -> str:
    """Point the model's op table at the kernels `mode` selects; returns the
    chosen mode's name. With the model's config, "auto" keeps each op the
    kernels do not cover on torch, and one log line says which ops run where.
    Kernel modules compile (or load from the cubin cache) here, at start-up."""
    from halyard_worker.model import ops

    try:
        from halyard_worker.kernels import select_ops
        from halyard_worker.kernels.coverage import ModelShape
        from halyard_worker.kernels.ops import preload
    except ImportError:
        if mode == "cupy":
            raise InvalidParameter("kernels", "cupy kernels are not available in this build; "
                                   "use kernels=torch or auto") from None
        ops.reset()
        return "torch"
    shape = None
    if mc is not None and dtype is not None:
        shape = ModelShape(mc.hidden_size, mc.intermediate_size, mc.num_heads, mc.num_kv_heads,
                           mc.head_dim, str(dtype).removeprefix("torch."))
    try:
        selected = select_ops(mode, device, shape)
    except ValueError as err:  # e.g. cupy asked for without a GPU, or a shape it cannot run
        raise InvalidParameter("kernels", str(err)) from err
    selected.install(ops)
    log.info("kernels %s -> %s: %s", mode, selected.name, selected.describe())
    modules = preload(selected, device)
    if modules:
        log.info("kernel modules loaded before serving: %s", ", ".join(modules))
    return getattr(selected, "name", mode)


def graph_plan_for(config: EngineConfig, device: torch.device, mc: ModelConfig, max_len: int):
    """The decode CUDA-graph plan, or None (logged with the reason) when steps run eagerly."""
    from halyard_worker.engine.graph_runner import graph_blocker
    from halyard_worker.model import ops

    cupy_ops = tuple(name for name in ops.OP_NAMES if getattr(ops, name) is not ops.reference(name))
    reason = graph_blocker(device, config.enforce_eager, cupy_ops)
    if reason is not None:
        log.info("CUDA graphs off: %s", reason)
        return None
    return make_plan(config.max_num_seqs, max_len, config.block_size)

def calibration_ids(config: EngineConfig, tokenizer) -> list[list[int]] | None:
    """Token ids of the calibration texts; int4-awq without texts uses the
    built-in English sample (`model/calibration_text.py`)."""
    texts = config.quantization_calibration
    if not texts and config.quantization == "int4-awq":
        from halyard_worker.model.calibration_text import default_calibration_texts

        texts = default_calibration_texts()
    return [tokenizer.encode(t) for t in texts] or None


def check_tensor_parallel_size(config: EngineConfig, mc: ModelConfig) -> None:
    """Refuse at start-up a tensor-parallel size that cannot split this model."""
    from halyard_worker.model.tp_plan import check_tensor_parallel

    try:
        check_tensor_parallel(mc, config.tensor_parallel_size)
    except ValueError as err:
        raise InvalidParameter("tensor_parallel_size", str(err)) from None
    if config.tensor_parallel_size > 1 and (config.quantization == "int4-awq" or config.quantization_calibration):
        raise InvalidParameter("tensor_parallel_size", "activation-aware calibration (int4-awq, "
                               "--calibration-text) is not supported with --tensor-parallel-size > 1; "
                               "use int8 or int4 without calibration text")
    if config.tensor_parallel_size > 1 and str(config.device).startswith("cuda"):
        first = torch.device(config.device).index or 0
        if first + config.tensor_parallel_size > torch.cuda.device_count():
            raise InvalidParameter("tensor_parallel_size", f"--tensor-parallel-size "
                                   f"{config.tensor_parallel_size} needs that many GPUs from {config.device}; "
                                   f"{torch.cuda.device_count()} visible")


def build_runner(config: EngineConfig) -> Built:
    """Rank 0 (the only rank without tensor parallelism): model, KV pool, runner;
    with `tensor_parallel_size` N > 1 it also starts ranks 1..N-1."""
    path = resolve_model_path(config.model)
    mc = load_config(path)
    check_tensor_parallel_size(config, mc)
    if config.tensor_parallel_size == 1:
        return _build(config, path, mc)
    from halyard_worker.engine.tp_ranks import start_ranks

    comm, link = start_ranks(config, config.tensor_parallel_size)
    try:
        return _build(config, path, mc, comm, link)
    except BaseException:
        link.close()
        raise


def build_rank_runner(config: EngineConfig, comm) -> ModelRunner:
    """A follower rank's runner (`engine/tp_ranks.py`)."""
    import os

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // comm.size))
    path = resolve_model_path(config.model)
    return _build(config, path, load_config(path), comm).runner


def _build(config: EngineConfig, path, mc: ModelConfig, comm=None, link=None) -> Built:
    from halyard_worker.model.tp_plan import ShardPlan

    plan = ShardPlan(mc, comm.rank, comm.size) if comm is not None else None
    device = comm.device if comm is not None else torch.device(config.device)
    local = plan.local_config() if plan else mc  # this rank's heads and MLP width
    dtype = choose_dtype(config.dtype, mc, device.type)
    max_len = choose_max_model_len(config, mc)
    leader = comm is None or comm.rank == 0
    tokenizer = load_tokenizer(config.tokenizer or str(path)) if leader else None  # followers never sample
    calibration = calibration_ids(config, tokenizer) if leader else None
    model = load_model(path, mc, dtype, str(device), max_len, config.quantization, calibration, plan, comm,
                       config.quantization_group_size)
    log.info("hot-path ops: %s", install_ops(config.kernels, device, local, dtype))
    graphs = None
    if comm is None:
        graphs = graph_plan_for(config, device, mc, max_len)
    elif device.type == "cuda":
        log.info("CUDA graphs off: tensor-parallel steps run eagerly")
    per_block = kv_bytes_per_block(model, config.block_size, dtype)
    reserve = activation_reserve(config, local, dtype) if device.type == "cuda" else 0
    if graphs is not None:
        reserve += scratch_bytes(graphs, config.block_size, mc.num_heads, mc.head_dim)
    budget = kv_budget_bytes(config, device) - reserve
    num_blocks = budget // per_block
    if device.type == "cpu" and config.kv_cache_memory is None:
        # no point in a default pool larger than every sequence at full length, twice
        num_blocks = min(num_blocks, 2 * config.max_num_seqs * -(-max_len // config.block_size))
    if comm is not None:
        num_blocks = comm.min_int(num_blocks)  # every rank holds the same blocks
    if num_blocks < 1:
        raise InvalidParameter("kv_cache_memory", f"budget {budget} bytes holds no KV block "
                               f"({per_block} bytes per block of {config.block_size} tokens)")
    if num_blocks * config.block_size < max_len:
        log.warning("KV pool holds %d tokens < max_model_len %d: lowering max_model_len to fit",
                    num_blocks * config.block_size, max_len)
        max_len = num_blocks * config.block_size
    eos = eos_token_ids(path, mc, tokenizer) if leader else ()
    runner = ModelRunner(model, num_blocks, config.block_size, dtype, str(device), config.seed, eos,
                         max_model_len=max_len, max_num_seqs=config.max_num_seqs, link=link, leader=leader)
    if graphs is not None:
        runner.capture_graphs(make_plan(config.max_num_seqs, max_len, config.block_size))
    return Built(tokenizer, runner, mc, max_len, eos, num_blocks)
