"""PNG plots of a run (matplotlib imported lazily, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from halyard.sim.runner import Simulation


def _policy_sum(arr: np.ndarray, sim: Simulation, v: int) -> np.ndarray:
    return arr[:, v * sim.D:(v + 1) * sim.D].sum(1)


def write_plots(sim: Simulation, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = sim.series
    hours = np.array(s.t) / 3600.0
    load, reps = np.array(s.load), np.array(s.replicas)
    ttft, cost = np.array(s.ttft_p95), np.array(s.cost)
    paths = []

    def save(fig, name):
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(hours, _policy_sum(load, sim, 0), lw=0.8)
    ax.set(xlabel="hours", ylabel="requests/s", title="Offered load (all deployments)")
    save(fig, "load.png")

    fig, axes = plt.subplots(len(sim.cfg.policies), 1, figsize=(9, 2.2 * len(sim.cfg.policies)), sharex=True)
    for v, (ax, name) in enumerate(zip(np.atleast_1d(axes), sim.cfg.policies)):
        od = reps[:, v * sim.D:(v + 1) * sim.D, 0].sum(1)
        spot = reps[:, v * sim.D:(v + 1) * sim.D, 1].sum(1)
        ax.stackplot(hours, od, spot, labels=["on-demand", "spot"], alpha=0.8)
        ax.set(ylabel="replicas", title=name)
        ax.legend(loc="upper left", fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("hours")
    save(fig, "replicas.png")

    fig, ax = plt.subplots(figsize=(9, 3))
    for v, name in enumerate(sim.cfg.policies):
        worst = np.nanmax(np.where(np.isnan(ttft[:, v * sim.D:(v + 1) * sim.D]), -1, ttft[:, v * sim.D:(v + 1) * sim.D]), axis=1)
        ax.plot(hours, np.where(worst < 0, np.nan, worst), lw=0.8, label=name)
    ax.set(xlabel="hours", ylabel="TTFT p95 (s, worst deployment)", yscale="log", title="Latency")
    ax.legend(fontsize=7)
    save(fig, "latency.png")

    fig, ax = plt.subplots(figsize=(9, 3))
    for v, name in enumerate(sim.cfg.policies):
        ax.plot(hours, _policy_sum(cost, sim, v), label=name)
    ax.set(xlabel="hours", ylabel="cumulative cost ($)", title="Cost")
    ax.legend(fontsize=7)
    save(fig, "cost.png")
    return paths
