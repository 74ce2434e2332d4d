"""One measurement of the engine's host time per decode step (run in a subprocess).

`python -m halyard.bench.overhead_probe --model DIR --batch B --steps N`
prints one JSON object. The model's forward and logits are replaced by
no-ops that return tensors of the right shapes, so what is timed is the
host work around the model: schedule + prepare + sample + post-process.
The engine found first on `sys.path` is measured, so a parent process can
point PYTHONPATH at an older checkout to measure it side by side.

Figures per step: `loop_ms`, the engine step loop in wall time (what delays
the next launch on a device); `loop_cpu_ms`, the same in this thread's CPU
time (what the loop costs on a quiet machine: on a shared one, wall time
also counts the time other processes hold the core); `output_ms`, the output side (detokenization, stop
strings, snapshots) when the engine runs it outside the loop (0 otherwise,
because then it is inside `loop_ms`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


class NoOpModel:
    """forward -> zeros [T, hidden]; compute_logits -> fixed random [S, vocab] float32."""

    def __init__(self, model, max_tokens: int, max_rows: int):
        import torch

        c = model.config
        self.config = c
        gen = torch.Generator().manual_seed(0)
        self.hidden = torch.zeros(max_tokens, c.hidden_size, dtype=model.embed_tokens.weight.dtype)
        self.logits = torch.randn(max_rows, c.vocab_size, generator=gen)

    def __call__(self, input_ids, positions, kv_caches, meta):
        return self.hidden[:input_ids.shape[0]]

    def compute_logits(self, hidden):
        return self.logits[:hidden.shape[0]]


def _engine(model: str, batch: int):
    from halyard_worker.engine.llm_engine import LLMEngine
    from halyard_worker.engine.types import EngineConfig

    tokens = max(2048, 32 * batch)
    engine = LLMEngine(EngineConfig(model=model, max_num_seqs=batch, max_num_batched_tokens=tokens,
                                    enable_prefix_caching=False, kernels="torch",
                                    kv_cache_memory=64 * 2**20))
    engine.runner.model = NoOpModel(engine.runner.model, tokens, batch)
    return engine


def _output_side(engine):
    """A callable that runs the output side of one step, or None when step() does it."""
    try:
        from halyard_worker.engine.output_processor import OutputProcessor
    except ImportError:
        return None
    proc = OutputProcessor(engine.tokenizer, stream=True)
    return proc


def measure(model: str, batch: int, steps: int, warmup: int, prompt_len: int) -> dict:
    import torch

    from halyard_worker.engine.types import SamplingParams

    torch.set_num_threads(1)
    engine = _engine(model, batch)
    proc = _output_side(engine)
    params = SamplingParams(temperature=0, max_tokens=warmup + steps + 8, ignore_eos=True)
    vocab = engine.model_config.vocab_size
    for i in range(batch):
        prompt = [(7 * i + j) % (vocab - 10) + 10 for j in range(prompt_len)]
        engine.add_request(str(i), prompt, params, prompt_ids=prompt)
        if proc is not None:
            proc.add(str(i), None, prompt, params)
    loop, loop_cpu, output = [], [], []
    for n in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.thread_time()
        outs = engine.step()
        t1, c1 = time.perf_counter(), time.thread_time()
        if proc is not None:
            proc.process(outs)
        t2 = time.perf_counter()
        if n >= warmup:
            loop.append((t1 - t0) * 1e3)
            loop_cpu.append((c1 - c0) * 1e3)
            output.append((t2 - t1) * 1e3)
    import halyard_worker

    return {"batch": batch, "steps": steps, "loop_ms": statistics.median(loop),
            "loop_cpu_ms": statistics.median(loop_cpu),
            "output_ms": statistics.median(output) if proc is not None else 0.0,
            "loop_ms_p90": statistics.quantiles(loop, n=10)[-1],
            "engine": halyard_worker.__file__, "output_outside_loop": proc is not None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--prompt-len", type=int, default=16)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.batch, args.steps, args.warmup, args.prompt_len)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
