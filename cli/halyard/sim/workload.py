"""Arrivals per time step per deployment: built-in workloads or a CSV trace.

Built-in workloads (mean total rate R req/s split by deployment weight):
  poisson  constant rate;
  diurnal  rate * (1 + 0.6 * sin(2 pi (t - 6h) / 24h)): trough 0.4x at 00:00, peak 1.6x at 12:00;
  spike    constant rate with 4x spikes of 15 min every 4 h (2 min ramps).
A scenario may multiply the rate (`rate_profile`) and the prompt length
(`prompt_profile`) by piecewise-linear functions of time: [(t_s, factor), ...].
Counts are Poisson draws per step; each step's requests carry prompt and
output token sums (the deployment's means times the prompt factor of the
moment). For TTFT, prompt lengths are log-normal around the deployment's
mean (sigma 0.8), summarised as NUM_CLASSES equal-weight classes.

Trace CSV columns: arrival_s,deployment,input_tokens,output_tokens
(`deployment` is namespace/name or name). It is streamed: memory grows with
the simulated steps, not the rows; each step keeps its requests' count and
token sums, so a period of long prompts is seen when it happens. Prompt-length
classes come from a bounded sample of the trace's prompts.
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from halyard.sim.model import SimDeployment, SimInputError

WORKLOADS = ("poisson", "diurnal", "spike")
SAMPLE = 100_000  # prompt lengths kept per deployment for the classes
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


def piecewise(points: tuple[tuple[float, float], ...], t: np.ndarray) -> np.ndarray:
    """Piecewise-linear factor at times t (1 when no points; flat beyond the ends)."""
    if not points:
        return np.ones_like(t)
    xs, ys = zip(*points)
    return np.interp(t, xs, ys)


@dataclass
class Arrivals:
    """Arrivals chunk by chunk: counts and their prompt/output token sums per deployment.

    Built-in: `rates[d]` mean req/s times shape(kind) times `rate_profile`;
    trace: per-step `trace_counts`, `trace_in`, `trace_out` [D, steps].
    """

    kind: str | None
    rates: np.ndarray  # [D] req/s (built-in)
    dt: float
    seed: int
    mean_in: np.ndarray | None = None  # [D] prompt tokens (built-in)
    mean_out: np.ndarray | None = None  # [D] output tokens (built-in)
    rate_profile: tuple = ()
    prompt_profile: tuple = ()
    trace_counts: np.ndarray | None = None
    trace_in: np.ndarray | None = None
    trace_out: np.ndarray | None = None

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        return self.rates[:, None] * (shape(self.kind, t) * piecewise(self.rate_profile, t))[None, :]

    def chunk(self, start_step: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(counts, prompt token sums, output token sums), each [D, n], for steps start_step ..."""
        if self.trace_counts is not None:
            outs = []
            for arr in (self.trace_counts, self.trace_in, self.trace_out):
                out = np.zeros((len(self.rates), n))
                part = arr[:, start_step:start_step + n]
                out[:, :part.shape[1]] = part
                outs.append(out)
            return tuple(outs)
        t = (start_step + np.arange(n)) * self.dt
        counts = self.rng.poisson(self._rate(t) * self.dt).astype(float)
        scale = piecewise(self.prompt_profile, t)[None, :]
        return counts, counts * self.mean_in[:, None] * scale, counts * self.mean_out[:, None]

    def initial_rates(self) -> np.ndarray:
        """Mean rate per deployment at t=0 (first 5 minutes for traces)."""
        if self.trace_counts is not None:
            w = max(1, int(300 / self.dt))
            return self.trace_counts[:, :w].sum(1) / (w * self.dt)
        return self._rate(np.zeros(1))[:, 0]

    def peak_rates(self, duration_s: float) -> np.ndarray:
        """Peak mean rate per deployment (5-minute average for traces)."""
        if self.trace_counts is not None:
            w = max(1, int(300 / self.dt))
            n = self.trace_counts.shape[1] // w * w
            if n == 0:
                return self.trace_counts.sum(1) / max(self.trace_counts.shape[1] * self.dt, 1e-9)
            return self.trace_counts[:, :n].reshape(len(self.rates), -1, w).sum(2).max(1) / (w * self.dt)
        t = np.arange(0, duration_s, 60.0)
        return self._rate(t).max(1)

    def peak_prompt_scale(self, duration_s: float) -> float:
        return float(piecewise(self.prompt_profile, np.arange(0, duration_s, 60.0)).max())


def builtin(kind: str, deployments: list[SimDeployment], total_rate: float, dt: float, seed: int,
            rate_profile: tuple = (), prompt_profile: tuple = ()) -> Arrivals:
    shape(kind, np.zeros(1))  # validates the name
    weights = np.array([d.weight for d in deployments], dtype=float)
    return Arrivals(kind, total_rate * weights / weights.sum(), dt, seed,
                    mean_in=np.array([d.input_tokens for d in deployments], dtype=float),
                    mean_out=np.array([d.output_tokens for d in deployments], dtype=float),
                    rate_profile=tuple(rate_profile), prompt_profile=tuple(prompt_profile))


def _match(name: str, deployments: list[SimDeployment]) -> dict[str, int]:
    return {key: i for i, d in enumerate(deployments) for key in (d.params.name, d.params.name.split("/", 1)[-1])}


def load_trace(path: str | Path, deployments: list[SimDeployment], dt: float, duration_s: float):
    """-> (Arrivals, deployments with the trace's token means and classes), streamed row by row."""
    steps = int(math.ceil(duration_s / dt))
    D = len(deployments)
    counts, tin, tout = np.zeros((D, steps)), np.zeros((D, steps)), np.zeros((D, steps))
    index = _match("", deployments)
    sums = np.zeros((D, 3))  # rows, prompt tokens, output tokens (whole trace)
    samples: list[list[float]] = [[] for _ in deployments]
    rnd = random.Random(0)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        need = ("arrival_s", "deployment", "input_tokens", "output_tokens")
        if not set(need) <= set(header):
            raise SimInputError(f"{path}: needs columns {', '.join(sorted(need))}")
        ia, idep, ii, io = (header.index(c) for c in need)
        for lineno, row in enumerate(reader, start=2):
            d = index.get(row[idep])
            if d is None:
                raise SimInputError(f"{path}:{lineno}: deployment {row[idep]!r} is not in --deployments")
            try:
                k, n_in, n_out = int(float(row[ia]) / dt), float(row[ii]), float(row[io])
            except ValueError:
                raise SimInputError(f"{path}:{lineno}: arrival_s, input_tokens, output_tokens must be numbers") from None
            sums[d] += (1, n_in, n_out)
            seen = int(sums[d, 0])
            if seen <= SAMPLE:
                samples[d].append(n_in)
            elif rnd.random() < SAMPLE / seen:  # reservoir sample of prompt lengths
                samples[d][rnd.randrange(SAMPLE)] = n_in
            if 0 <= k < steps:
                counts[d, k] += 1
                tin[d, k] += n_in
                tout[d, k] += n_out
    updated = [_with_tokens(dep, row, sample) for dep, row, sample in zip(deployments, sums, samples)]
    arrivals = Arrivals(None, np.zeros(D), dt, 0, trace_counts=counts, trace_in=tin, trace_out=tout)
    return arrivals, updated


def _with_tokens(dep: SimDeployment, sums: np.ndarray, sample: list[float]) -> SimDeployment:
    if not sums[0]:
        return dep
    qs = [(i + 0.5) / NUM_CLASSES for i in range(NUM_CLASSES)]
    classes = tuple(float(x) for x in np.quantile(np.array(sample), qs))
    return replace(dep, input_tokens=float(sums[1] / sums[0]), output_tokens=float(sums[2] / sums[0]),
                   input_classes=classes)
