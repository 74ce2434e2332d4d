"""The simulation loop: every policy runs side by side on the same arrivals.

Lanes are (policy, deployment) pairs, index l = policy * D + deployment; the
fleet and serving models step all lanes together with numpy. Controllers tick
every `interval_s` (the operator's reconcile period) and see the last scrape
(taken every `scrape_s`, so up to that old) over the last `window_s`, with the
noise a scrape of finite counts has: completed requests and gauges are
Poisson draws, p95s carry a relative error of about 1/sqrt(requests in the window),
the prefill budget in use one of BUDGET_NOISE.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from halyard_operator.signals.types import DeploymentMetrics
from halyard.sim import stats
from halyard.sim.controllers import POLICIES, LaneView, make_controllers, replica_capacity
from halyard.sim.fleet import OD, SPOT, Fleet
from halyard.sim.model import Pool, SimDeployment
from halyard.sim.serving import Serving
from halyard.sim.workload import Arrivals, lognormal_classes

TIER_RANK = {"critical": 0, "standard": 1, "batch": 2}
BUDGET_NOISE = 0.03  # relative error of the prefill budget in use (scrapes misaligned with steps)


@dataclass(frozen=True)
class SimConfig:
    """Invariants: dt > 0; interval_s >= dt; window_s >= interval_s."""

    duration_s: float
    dt: float = 1.0
    interval_s: float = 15.0
    window_s: float = 60.0
    scrape_s: float = 10.0  # the operator's metricsInterval
    noise: bool = True
    queue_timeout_s: float = 60.0
    seed: int = 0
    policies: tuple[str, ...] = POLICIES
    samples: int = 1500  # time-series points kept for plots


@dataclass
class Series:
    """Time series for plots: t [n]; per lane arrays [n, L] (replicas per pool [n, L, 2])."""

    t: list = field(default_factory=list)
    load: list = field(default_factory=list)
    replicas: list = field(default_factory=list)
    ttft_p95: list = field(default_factory=list)
    cost: list = field(default_factory=list)


def lane_constants(deps: list[SimDeployment], V: int) -> dict:
    def col(fn):
        return np.tile(np.array([fn(d) for d in deps], dtype=float), V)

    return {
        "base": col(lambda d: d.profile.decode_base_s), "per_seq": col(lambda d: d.profile.decode_per_seq_s),
        "prefill": col(lambda d: d.profile.prefill_tokens_per_s), "bmax": col(lambda d: d.profile.max_batch),
        "kv": col(lambda d: d.profile.kv_capacity_tokens), "in_tokens": col(lambda d: d.input_tokens),
        "out_tokens": col(lambda d: d.output_tokens),
        "itl_slo": col(lambda d: d.params.scaling.slo.itl_p95_s or math.inf),
    }


def prefill_classes(deps: list[SimDeployment]) -> np.ndarray:
    """[D, C] seconds to first token excluding queueing, per prompt class."""
    rows = []
    for d in deps:
        classes = d.input_classes or lognormal_classes(d.input_tokens)
        rows.append([n / d.profile.prefill_tokens_per_s + d.profile.decode_base_s for n in classes])
    return np.array(rows)


class Simulation:
    def __init__(self, deps: list[SimDeployment], pools: dict[str, Pool], arrivals: Arrivals, cfg: SimConfig):
        self.deps, self.pools, self.arrivals, self.cfg = deps, pools, arrivals, cfg
        self.D, self.V = len(deps), len(cfg.policies)
        L = self.D * self.V
        variant_of = np.arange(L) // self.D
        tiers = np.tile([TIER_RANK[d.params.tier] for d in deps], self.V)
        order = np.lexsort((np.arange(L), tiers, variant_of))
        drains = np.ones(L, dtype=bool)  # the node handler drains at the notice; ReplicaSets replace at once
        gpr = np.tile([max(d.params.gpus_per_replica, 1) for d in deps], self.V)
        gb = np.tile([d.model_gb for d in deps], self.V)
        self.fleet = Fleet(pools, gpr, variant_of, order, drains, cfg.dt, self.V, gb)
        c = lane_constants(deps, self.V)
        S = max(2, math.ceil(cfg.queue_timeout_s / cfg.dt) + 1)
        samples = stats.ttft_samples(prefill_classes(deps), stats.waits(S, cfg.dt))
        slo = np.array([d.params.scaling.slo.ttft_p95_s or math.inf for d in deps])
        self.cdf = stats.ttft_cdf(samples)  # [D, S, G]
        self.lane_cdf = np.ascontiguousarray(np.tile(self.cdf, (self.V, 1, 1)))  # [L, S, G]
        self.serving = Serving(c, cfg.dt, cfg.queue_timeout_s, np.tile(stats.ok_by_age(samples, slo), (self.V, 1)))
        self.itl_hist = np.zeros((L, len(stats.ITL_GRID)))
        self.ready_seconds = np.zeros(L)  # integral of ready replicas over time, per lane
        all_ctl = make_controllers(deps, pools, arrivals.peak_rates(cfg.duration_s),
                                   arrivals.peak_prompt_scale(cfg.duration_s))
        self.controllers = [all_ctl[p] for p in cfg.policies]
        self.noise_rngs = [np.random.default_rng(cfg.seed + 2000) for _ in range(self.V)]
        self.budget_rngs = [np.random.default_rng(cfg.seed + 3000) for _ in range(self.V)]
        self._warm_start()
        self.window = stats.Window(cfg.window_s)
        self.scraped = self._metrics(0.0)  # the scraper's first sample
        self.sample_window = stats.Window(0.0)
        self.series = Series()
        self.rngs = [np.random.default_rng(cfg.seed + 1000) for _ in range(self.V)]

    def _warm_start(self) -> None:
        """Every policy starts Ready at the size the initial load needs (at 80% of profile capacity)."""
        rates = self.arrivals.initial_rates()
        for l in range(self.D * self.V):
            v, i = divmod(l, self.D)
            d = self.deps[i]
            need = math.ceil(rates[i] / max(0.8 * replica_capacity(d)[0], 1e-9))
            n = min(max(need, d.params.scaling.min_replicas), d.params.scaling.max_replicas)
            self.fleet.target[l] = self.controllers[v].start(i, n)
        self.fleet.place_ready(0.0)

    # --- metrics the controllers see -------------------------------------------------
    def _metrics(self, t: float) -> list[DeploymentMetrics]:
        s = self.serving
        diff = self.window.push(t, {"done": s.completed, "adm": s.admitted_by_age, "itl": self.itl_hist,
                                    "ready_s": self.ready_seconds, "pin": s.prompt_done, "pout": s.output_done,
                                    "pf": s.prefill_tokens, "pb": s.prefill_budget})
        span = max(diff["_span"], self.cfg.dt)
        ttft = self._ttft_p95(diff["adm"])
        itl = stats.hist_quantile(diff["itl"], stats.ITL_GRID)
        ready = self.fleet.ready.sum(1)
        kv, queue, running, done = s.kv_usage(ready), s.queue.sum(1), s.running.copy(), diff["done"].copy()
        err = np.ones(len(ready))
        budget = np.divide(diff["pf"], diff["pb"], out=np.full(len(ready), np.nan), where=diff["pb"] > 0)
        if self.cfg.noise:
            queue, running, done, err, budget = self._noise(queue, running, done, budget)
            scale = np.divide(done, diff["done"], out=np.ones_like(done), where=diff["done"] > 0)
            diff["pin"], diff["pout"] = diff["pin"] * scale, diff["pout"] * scale
        return [DeploymentMetrics(
            at=t, window_s=span, request_rate=done[l] / span,
            prompt_token_rate=float(diff["pin"][l] / span), generation_token_rate=float(diff["pout"][l] / span),
            ttft_p95_s=None if np.isnan(ttft[l]) else float(ttft[l] * err[l]),
            itl_p95_s=None if np.isnan(itl[l]) else float(itl[l]),
            queue=float(queue[l]), running=float(running[l]), kv_usage=float(kv[l]),
            prefill_budget_use=None if np.isnan(budget[l]) else float(budget[l]),
            pods_total=self._serving_pods(ready[l], diff["ready_s"][l] / span)) for l in range(len(ready))]

    def _noise(self, queue, running, done, budget):
        """Scrape noise, drawn per policy from its own generators (all seeded alike): one
        policy's decisions never change the draws another policy sees (a Poisson draw
        takes a number of random values that depends on its mean)."""
        queue, running, done = (np.maximum(np.asarray(x, dtype=float), 0) for x in (queue, running, done))
        budget, err = np.array(budget, dtype=float), np.ones(len(done))
        for v in range(self.V):
            lanes = slice(v * self.D, (v + 1) * self.D)
            rng = self.noise_rngs[v]
            queue[lanes], running[lanes] = rng.poisson(queue[lanes]), rng.poisson(running[lanes])
            sigma = np.clip(1 / np.sqrt(np.maximum(done[lanes], 1)), 0.02, 0.3)
            done[lanes] = rng.poisson(done[lanes])
            err[lanes] = np.exp(rng.normal(0, sigma, self.D))
            budget[lanes] *= np.exp(self.budget_rngs[v].normal(0, BUDGET_NOISE, self.D))
        return queue, running, done, err, budget

    @staticmethod
    def _serving_pods(now: float, mean: float) -> int:
        """Pods scraped over the window: `now` when steady, else a different count (like a
        scraper that saw pods come and go)."""
        return max(1, int(now)) if abs(mean - now) < 0.05 else max(1, int(round(mean)) + (1 if mean > now else -1))

    def _ttft_p95(self, adm: np.ndarray) -> np.ndarray:
        """[L] TTFT p95 from admissions by age [L, S] (only the age columns in use are mixed)."""
        cols = np.flatnonzero(adm.any(0))
        if not len(cols):
            return np.full(len(adm), np.nan)
        last = cols[-1] + 1
        return stats.ttft_quantile(adm[:, :last], self.lane_cdf[:, :last, :])

    def _view(self, l: int, t: float, m: DeploymentMetrics) -> LaneView:
        f = self.fleet
        return LaneView(
            metrics=m, ready=(int(f.ready[l, OD]), int(f.ready[l, SPOT])),
            starting=(int(f.pipe_total[l, OD]), int(f.pipe_total[l, SPOT])),
            stuck=(int(f.unsched[l, OD]), int(f.unsched[l, SPOT])),
            stuck_age_s=tuple(float(t - x) if np.isfinite(x) else 0.0 for x in f.unsched_since[l]),
            lost=(int(f.lost[l, OD]), int(f.lost[l, SPOT])))

    def budget_gpus(self, t: float) -> np.ndarray:
        """[V] GPUs the tier arbiter shares out per variant: every on-demand GPU the pool can
        hold, and the spot pool's (only the nodes already up during a stock-out)."""
        f, out = self.fleet, np.zeros(self.V)
        for p, pool in enumerate(f.pools):
            if pool is not None:
                out += pool.max_nodes * pool.gpus_per_node if pool.available_at(t) else f.nodes[:, p] * pool.gpus_per_node
        return out

    def _tick(self, t: float) -> None:
        f, metrics = self.fleet, self.scraped
        budget = self.budget_gpus(t)
        for v, ctl in enumerate(self.controllers):
            lanes = range(v * self.D, (v + 1) * self.D)
            views = [self._view(l, t, metrics[l]) for l in lanes]
            for l, counts in zip(lanes, ctl.tick_all(t, views, int(budget[v]))):
                f.target[l] = counts
        f.lost[:] = 0

    # --- main loop ---------------------------------------------------------------------
    def run(self, progress: bool = True) -> None:
        cfg, f, s = self.cfg, self.fleet, self.serving
        steps = int(math.ceil(cfg.duration_s / cfg.dt))
        tick_every = max(1, int(round(cfg.interval_s / cfg.dt)))
        scrape_every = max(1, int(round(cfg.scrape_s / cfg.dt)))
        sample_every = max(1, steps // cfg.samples)
        chunk, arrivals = 3600, None
        bar = Progress(steps, cfg.dt) if progress else None
        for k in range(steps):
            t = k * cfg.dt
            if k % chunk == 0:
                arrivals = self.arrivals.chunk(k, chunk)
            f.advance(k, t)
            changed = False
            for lost, notice in f.interrupt(k, t, self.rngs):
                if lost.any():
                    s.lose(f.ready.sum(1) + lost, lost, notice)
                    changed = True
            if k % scrape_every == 0 and k > 0:
                self.scraped = self._metrics(t)
            if k % tick_every == 0 and k > 0:
                self._tick(t)
                changed = True
            if changed or f.unsched.any():
                f.reconcile(k, t)
            ready = f.ready.sum(1)
            self.ready_seconds += ready * cfg.dt
            j = k % chunk
            s.step(ready, *(np.tile(a[:, j], self.V) for a in arrivals))
            stats.add_itl(self.itl_hist, s.itl, np.where(s.itl > 0, s.running * cfg.dt / np.maximum(s.itl, 1e-9), 0))
            f.bill(t)
            if k % sample_every == 0:
                self._sample(t)
            if bar:
                bar.update(k + 1)
        if bar:
            bar.close()

    def _sample(self, t: float) -> None:
        s, f = self.serving, self.fleet
        diff = self.sample_window.push(t, {"arr": s.arrived, "adm": s.admitted_by_age})
        span = max(diff["_span"], self.cfg.dt)
        self.series.t.append(t)
        self.series.load.append(diff["arr"] / span)
        self.series.replicas.append(f.ready + f.pipe_total)
        self.series.ttft_p95.append(self._ttft_p95(diff["adm"]))
        self.series.cost.append(self.cost_by_lane())

    def cost_by_lane(self) -> np.ndarray:
        """[L] $ of the GPUs each lane's replicas held (idle node GPUs are per policy: `idle_cost`)."""
        return self.fleet.cost.sum(1)


class Progress:
    """A one-line progress bar on stderr (simulated time, wall time, ETA)."""

    def __init__(self, steps: int, dt: float, width: int = 30):
        self.steps, self.dt, self.width = steps, dt, width
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.5 and done < self.steps:
            return
        self.last = now
        pct = int(1000 * done / self.steps)
        elapsed = now - self.start
        eta = elapsed / done * (self.steps - done)
        fill = int(self.width * done / self.steps)
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (self.width - fill)}] {pct / 10:5.1f}% "
                         f"sim {done * self.dt / 3600:7.1f}h  wall {elapsed:6.0f}s  eta {eta:5.0f}s")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
