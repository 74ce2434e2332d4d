"""Arrivals per time step per deployment: built-in workloads or a CSV trace.

Built-in workloads (mean total rate R req/s split by deployment weight):
  poisson  constant rate;
  diurnal  rate * (1 + 0.6 * sin(2 pi (t - 6h) / 24h)): trough 0.4x at 00:00, peak 1.6x at 12:00;
  spike    constant rate with 4x spikes of 15 min every 4 h (2 min ramps).
Counts are Poisson draws per step. Prompt lengths are log-normal around the
deployment's mean (sigma 0.8), summarised as NUM_CLASSES equal-weight classes.

Trace CSV columns: arrival_s,deployment,input_tokens,output_tokens
(`deployment` is namespace/name or name). Its per-deployment token means and
prompt-length classes replace the manifests' hints.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from halyard.sim.model import SimDeployment, SimInputError

WORKLOADS = ("poisson", "diurnal", "spike")
NUM_CLASSES = 8
DAY_S = 86400.0


def lognormal_classes(mean: float, sigma: float = 0.8) -> tuple[float, ...]:
    """Mid-quantiles of a log-normal with the given mean: NUM_CLASSES equal-weight lengths."""
    from statistics import NormalDist

    mu = math.log(mean) - sigma * sigma / 2
    qs = [(i + 0.5) / NUM_CLASSES for i in range(NUM_CLASSES)]
    return tuple(math.exp(mu + sigma * NormalDist().inv_cdf(q)) for q in qs)


def shape(kind: str, t: np.ndarray) -> np.ndarray:
    """Rate multiplier (mean ~1) at times t (s)."""
    if kind == "poisson":
        return np.ones_like(t)
    if kind == "diurnal":
        return 1.0 + 0.6 * np.sin(2 * np.pi * (t - DAY_S / 4) / DAY_S)
    if kind == "spike":
        phase = np.mod(t, 4 * 3600.0)
        up = np.clip(phase / 120.0, 0, 1) * np.clip((900.0 - phase) / 120.0 + 1, 0, 1)
        return 1.0 + 3.0 * np.where(phase < 1020.0, up, 0.0)
    raise SimInputError(f"--workload: {kind!r} is not one of {', '.join(WORKLOADS)}")


@dataclass
class Arrivals:
    """Arrival counts, chunk by chunk. `rates[d]` is deployment d's mean req/s."""

    kind: str | None
    rates: np.ndarray  # [D] req/s (built-in)
    dt: float
    seed: int
    trace_counts: np.ndarray | None = None  # [D, steps] (trace)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def chunk(self, start_step: int, n: int) -> np.ndarray:
        """Counts [D, n] for steps start_step .. start_step + n - 1."""
        if self.trace_counts is not None:
            out = np.zeros((len(self.rates), n))
            part = self.trace_counts[:, start_step:start_step + n]
            out[:, :part.shape[1]] = part
            return out
        t = (start_step + np.arange(n)) * self.dt
        lam = self.rates[:, None] * shape(self.kind, t)[None, :] * self.dt
        return self.rng.poisson(lam).astype(float)

    def initial_rates(self) -> np.ndarray:
        """Mean rate per deployment at t=0 (first 5 minutes for traces)."""
        if self.trace_counts is not None:
            w = max(1, int(300 / self.dt))
            return self.trace_counts[:, :w].sum(1) / (w * self.dt)
        return self.rates * shape(self.kind, np.zeros(1))[0]

    def peak_rates(self, duration_s: float) -> np.ndarray:
        """Peak mean rate per deployment (5-minute average for traces)."""
        if self.trace_counts is not None:
            w = max(1, int(300 / self.dt))
            n = self.trace_counts.shape[1] // w * w
            if n == 0:
                return self.trace_counts.sum(1) / max(self.trace_counts.shape[1] * self.dt, 1e-9)
            return self.trace_counts[:, :n].reshape(len(self.rates), -1, w).sum(2).max(1) / (w * self.dt)
        t = np.arange(0, duration_s, 60.0)
        return self.rates * shape(self.kind, t).max()


def builtin(kind: str, deployments: list[SimDeployment], total_rate: float, dt: float, seed: int) -> Arrivals:
    shape(kind, np.zeros(1))  # validates the name
    weights = np.array([d.weight for d in deployments], dtype=float)
    return Arrivals(kind, total_rate * weights / weights.sum(), dt, seed)


def _match(name: str, deployments: list[SimDeployment]) -> int | None:
    for i, d in enumerate(deployments):
        if name in (d.params.name, d.params.name.split("/", 1)[-1]):
            return i
    return None


def load_trace(path: str | Path, deployments: list[SimDeployment], dt: float, duration_s: float):
    """-> (Arrivals, deployments with the trace's token means and classes)."""
    steps = int(math.ceil(duration_s / dt))
    counts = np.zeros((len(deployments), steps))
    inputs: list[list[float]] = [[] for _ in deployments]
    outputs: list[list[float]] = [[] for _ in deployments]
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"arrival_s", "deployment", "input_tokens", "output_tokens"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise SimInputError(f"{path}: needs columns {', '.join(sorted(need))}")
        for lineno, row in enumerate(reader, start=2):
            d = _match(row["deployment"], deployments)
            if d is None:
                raise SimInputError(f"{path}:{lineno}: deployment {row['deployment']!r} is not in --deployments")
            try:
                k = int(float(row["arrival_s"]) / dt)
                inputs[d].append(float(row["input_tokens"]))
                outputs[d].append(float(row["output_tokens"]))
            except ValueError:
                raise SimInputError(f"{path}:{lineno}: arrival_s, input_tokens, output_tokens must be numbers") from None
            if 0 <= k < steps:
                counts[d, k] += 1
    updated = [_with_tokens(dep, ins, outs) for dep, ins, outs in zip(deployments, inputs, outputs)]
    return Arrivals(None, np.zeros(len(deployments)), dt, 0, trace_counts=counts), updated


def _with_tokens(dep: SimDeployment, ins: list[float], outs: list[float]) -> SimDeployment:
    if not ins:
        return dep
    qs = [(i + 0.5) / NUM_CLASSES for i in range(NUM_CLASSES)]
    classes = tuple(float(x) for x in np.quantile(np.array(ins), qs))
    return replace(dep, input_tokens=float(np.mean(ins)), output_tokens=float(np.mean(outs)), input_classes=classes)
