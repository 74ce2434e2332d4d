"""`halyard bench overhead`: the engine's host time per decode step.

A 1-layer, hidden-32 model whose forward and logits are no-ops of the right
shapes (`overhead_probe.NoOpModel`), so the figure is the host work around
the model: schedule + prepare + sample + post-process. Each (batch, repeat)
is one fresh subprocess. With `--baseline-worker DIR` (a directory holding
another `halyard_worker` package, e.g. an older checkout's `worker/`), the
same probe runs against it, interleaved with the current engine, so both
see the same machine load. Every figure is the median over `--steps`
steady-state decode steps; the spread over repeats is the noise.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGETS_MS = {1: 0.25, 256: 2.0}  # step-loop targets on a 2-core CPU machine (docs/performance.md)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default 1, 64, 256)")
    parser.add_argument("--steps", type=int, default=200, help="timed decode steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per batch size and engine")
    parser.add_argument("--baseline-worker", help="directory containing another halyard_worker "
                        "package to measure side by side (e.g. an older checkout's worker/)")
    parser.add_argument("--out", help="write the results as JSON here")


def build_model(path: str) -> str:
    from halyard.testing.tiny import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                         num_kv_heads=1, max_position_embeddings=512)
    return str(build_tiny_model(path, spec))


def probe(model: str, batch: int, steps: int, worker_dir: str | None) -> dict:
    env = dict(os.environ)
    if worker_dir:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (worker_dir, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "halyard.bench.overhead_probe", "--model", model,
           "--batch", str(batch), "--steps", str(steps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({' '.join(cmd)}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    loops = [r["loop_ms"] for r in runs]
    cpu = [r["loop_cpu_ms"] for r in runs]
    return {"loop_ms": statistics.median(loops), "loop_ms_min": min(loops), "loop_ms_max": max(loops),
            "loop_cpu_ms": statistics.median(cpu), "loop_cpu_ms_min": min(cpu), "loop_cpu_ms_max": max(cpu),
            "output_ms": statistics.median(r["output_ms"] for r in runs), "runs": runs}


def print_table(rows: list[dict]) -> None:
    print(f"{'engine':9} {'batch':>5} {'loop wall ms':>12} {'(min-max)':>15} {'loop cpu ms':>12} "
          f"{'(min-max)':>15} {'output side ms':>15} {'target':>7}")
    for r in rows:
        wall = f"{r['loop_ms_min']:.3f}-{r['loop_ms_max']:.3f}"
        cpu = f"{r['loop_cpu_ms_min']:.3f}-{r['loop_cpu_ms_max']:.3f}"
        target = TARGETS_MS.get(r["batch"])
        print(f"{r['engine']:9} {r['batch']:5d} {r['loop_ms']:12.3f} {wall:>15} {r['loop_cpu_ms']:12.3f} "
              f"{cpu:>15} {r['output_ms']:15.3f} {target if target else '-':>7}")


def run(args) -> int:
    batches = args.batch or [1, 64, 256]
    engines = [("current", None)] + ([("baseline", args.baseline_worker)] if args.baseline_worker else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(tmp)
        for batch in batches:
            runs: dict[str, list] = {name: [] for name, _ in engines}
            for _ in range(args.repeats):
                for name, worker_dir in engines:
                    runs[name].append(probe(model, batch, args.steps, worker_dir))
            rows += [{"engine": name, "batch": batch, **summarize(runs[name])} for name, _ in engines]
    print_table(rows)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"config": {"batches": batches, "steps": args.steps, "repeats": args.repeats,
                                  "baseline_worker": args.baseline_worker},
                       "targets_ms": TARGETS_MS, "results": rows}, f, indent=2)
    return 0
