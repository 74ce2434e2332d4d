"""Latency distributions in the simulator: fixed log grids, quantiles, sliding windows.

TTFT of a request admitted at age column k with prompt class c is
wait_k + prefill_c (+ one decode step); its distribution is the mixture over
(k, c) weighted by admissions, so TTFT quantiles come from admissions-by-age
counts and a precomputed CDF matrix F[d, k, g] = P(wait_k + prefill <= grid_g).
ITL quantiles come from token-weighted histograms on a log grid.
"""
from __future__ import annotations

import numpy as np

TTFT_GRID = np.geomspace(1e-3, 600.0, 200)  # seconds
ITL_GRID = np.geomspace(1e-3, 10.0, 160)  # seconds


def waits(S: int, dt: float) -> np.ndarray:
    """Mean wait (s) of requests admitted at age column k (0: admitted on arrival)."""
    w = (np.arange(S) - 0.5) * dt
    w[0] = 0.0
    return w


def ttft_samples(prefill_s: np.ndarray, waits_s: np.ndarray) -> np.ndarray:
    """[D, S, C] TTFT per (deployment, age column, prompt class)."""
    return waits_s[None, :, None] + prefill_s[:, None, :]


def ttft_cdf(samples: np.ndarray) -> np.ndarray:
    """[D, S, G] share of prompt classes with TTFT <= TTFT_GRID[g]."""
    return (samples[..., None] <= TTFT_GRID).mean(axis=2)


def ok_by_age(samples: np.ndarray, slo: np.ndarray) -> np.ndarray:
    """[D, S] share of requests admitted at age k that meet the TTFT target `slo` [D]."""
    return (samples <= slo[:, None, None]).mean(axis=2)


def _grid_quantile(cdf: np.ndarray, grid: np.ndarray, q: float) -> np.ndarray:
    """First grid point where each row's CDF reaches q, interpolated (NaN for empty rows)."""
    idx = np.argmax(cdf >= q - 1e-12, axis=1)
    hi = grid[idx]
    lo = np.where(idx > 0, grid[np.maximum(idx - 1, 0)], 0.0)
    c_hi = cdf[np.arange(len(cdf)), idx]
    c_lo = np.where(idx > 0, cdf[np.arange(len(cdf)), np.maximum(idx - 1, 0)], 0.0)
    frac = np.clip((q - c_lo) / np.maximum(c_hi - c_lo, 1e-12), 0, 1)
    return lo + (hi - lo) * frac


def ttft_quantile(admitted: np.ndarray, cdf: np.ndarray, q: float = 0.95) -> np.ndarray:
    """admitted [n, S], cdf [n, S, G] -> [n] TTFT quantile (NaN where nothing was admitted)."""
    total = admitted.sum(1)
    mix = np.einsum("ns,nsg->ng", admitted, cdf) / np.maximum(total, 1e-12)[:, None]
    out = _grid_quantile(mix, TTFT_GRID, q)
    return np.where(total > 0, out, np.nan)


def hist_quantile(hist: np.ndarray, grid: np.ndarray, q: float = 0.95) -> np.ndarray:
    """hist [n, G] weights per grid bucket (bucket g holds values <= grid[g]) -> [n] quantile."""
    total = hist.sum(1)
    cdf = np.cumsum(hist, axis=1) / np.maximum(total, 1e-12)[:, None]
    return np.where(total > 0, _grid_quantile(cdf, grid, q), np.nan)


def add_itl(hist: np.ndarray, itl: np.ndarray, tokens: np.ndarray) -> None:
    """Add `tokens` [L] generated at `itl` [L] seconds into hist [L, G]."""
    idx = np.minimum(np.searchsorted(ITL_GRID, itl), len(ITL_GRID) - 1)
    live = tokens > 0
    hist[np.flatnonzero(live), idx[live]] += tokens[live]


class Window:
    """Snapshots of cumulative counters for some lanes; differences give windowed values."""

    def __init__(self, span_s: float):
        self.span_s = span_s
        self.snaps: list[tuple[float, dict]] = []

    def push(self, t: float, values: dict) -> dict:
        """Store a snapshot; return {key: (value - value at window start)} and the span in s."""
        self.snaps.append((t, {k: v.copy() for k, v in values.items()}))
        while len(self.snaps) > 2 and self.snaps[1][0] <= t - self.span_s:
            self.snaps.pop(0)
        t0, first = self.snaps[0]
        diff = {k: values[k] - first[k] for k in values}
        diff["_span"] = t - t0
        return diff
