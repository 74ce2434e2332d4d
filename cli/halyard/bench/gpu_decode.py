"""Offline decode benchmark on an 8B-shaped random-weight model (GPU).

The model (Llama-3-8B shapes, random bf16 weights made on the device, so
nothing is read from disk) runs in the engine's own scheduler and runner,
with the kernels `--kernels auto` picks and decode CUDA graphs. Per batch
size: steady-state wall time per decode step (host included), the device
time of the same step replayed back to back (CUDA events), the GPU busy
fraction (device / wall) and the weight bandwidth the device time implies.
"""
from __future__ import annotations

import statistics
import time

import torch

PROMPT, STEPS = 128, 24


def build_model(dtype: torch.dtype, quantization: str | None, layers: int):
    from halyard_worker.model.config import ModelConfig, RopeConfig
    from halyard_worker.model.llama import LlamaModel

    c = ModelConfig("LlamaForCausalLM", 128256, 4096, 14336, layers, 32, 8, 128, 8192, 1e-5,
                    RopeConfig(theta=500000.0), False, False, False, False, "bfloat16", (), None)
    with torch.device("cuda"):
        model = LlamaModel(c, PROMPT + STEPS + 16)
    model = model.to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    if quantization:
        from halyard_worker.model.quant import quantize_model

        model = quantize_model(model, quantization)
    return model.eval()


def _core(model, dtype, batch: int, eager: bool):
    from halyard_worker.engine.block_manager import BlockManager
    from halyard_worker.engine.graph_plan import make_plan
    from halyard_worker.engine.runner import ModelRunner
    from halyard_worker.engine.scheduler import Scheduler, SchedulerConfig

    max_len = PROMPT + STEPS + 16
    blocks = batch * -(-max_len // 16) + 8
    runner = ModelRunner(model, blocks, 16, dtype, "cuda", max_model_len=max_len, max_num_seqs=batch)
    if not eager:
        runner.capture_graphs(make_plan(batch, max_len, 16))
    sched = Scheduler(SchedulerConfig(batch, max(2048, batch * PROMPT), max_len), BlockManager(blocks, 16, False))
    return runner, sched


def measure(model, dtype, batch: int, eager: bool = False) -> dict:
    from halyard_worker.engine.sequence import Sequence
    from halyard_worker.engine.types import SamplingParams

    runner, sched = _core(model, dtype, batch, eager)
    params = SamplingParams(temperature=0, max_tokens=STEPS, ignore_eos=True)
    gen = torch.Generator().manual_seed(batch)
    for i in range(batch):
        ids = torch.randint(0, 128000, (PROMPT,), generator=gen).tolist()
        sched.add(Sequence(f"r{i}", ids, params))
    walls = []
    for n in range(STEPS - 1):
        out = sched.schedule()
        t0 = time.perf_counter()
        result = runner.execute(out)
        sched.update(out, result)
        if n >= 3 and all(v == 1 for v in out.num_scheduled_tokens.values()):
            walls.append(time.perf_counter() - t0)
    device_s = _device_time(runner, batch)
    wall = statistics.median(walls)
    return {"batch": batch, "step_wall_ms": wall * 1e3, "step_device_ms": device_s * 1e3,
            "gpu_busy": min(1.0, device_s / wall), "graphs": runner.graphs is not None}


def _device_time(runner, batch: int, reps: int = 10) -> float:
    """Device seconds of one decode step, replayed back to back (no host gaps)."""
    if runner.graphs is None:
        return float("nan")
    dev = dict(dtype=torch.long, device="cuda")
    flat = torch.zeros(3, batch, **dev)
    flat[2].fill_(-1)  # write no KV
    tables = torch.zeros(batch, 8, **dev)
    lens = torch.full((batch,), PROMPT, **dev)
    runner.graphs.run(flat, tables, lens)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        runner.graphs.run(flat, tables, lens)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def weight_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())
               if t.dim() >= 2 and t.shape[0] > 64 and t is not model.rope_cos and t is not model.rope_sin)


def run_all(batches=(1, 64, 256), modes=("bf16", "int8", "int4"), layers: int = 32) -> list[dict]:
    from halyard_worker.kernels import select_ops
    from halyard_worker.kernels.coverage import ModelShape
    from halyard_worker.model import ops

    select_ops("auto", "cuda", ModelShape(4096, 14336, 32, 8, 128, "bfloat16")).install(ops)
    rows = []
    for mode in modes:
        model = build_model(torch.bfloat16, None if mode == "bf16" else mode, layers)
        wbytes = weight_bytes(model)
        for batch in batches:
            row = {"mode": mode, "layers": layers, "weight_bytes": wbytes,
                   **measure(model, torch.bfloat16, batch)}
            row["weight_gb_per_s"] = wbytes / (row["step_device_ms"] / 1e3) / 1e9
            rows.append(row)
            print(row, flush=True)
            torch.cuda.empty_cache()
        del model
        torch.cuda.empty_cache()
    return rows
