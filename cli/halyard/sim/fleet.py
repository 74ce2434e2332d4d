"""Replica bookkeeping for every lane (policy variant x deployment) and pool, vectorised.

Pool axis: 0 = on-demand, 1 = spot. A replica moves
    unschedulable (no capacity: stockout or pool at maxNodes; not billed)
 -> starting (node provisioning + model warm-up; billed, not serving)
 -> ready (serving) -> [spot interruption] -> dying (notice period; billed, not serving).
Interrupted replicas are replaced at once in lanes whose policy drains on the
notice (Halyard: the pod is deleted, the ReplicaSet recreates it); other lanes
replace them when the node is gone (notice over). Nodes are assumed bin-packed:
billing is GPU-seconds of existing replicas at the pool's price.
"""
from __future__ import annotations

import math

import numpy as np

from halyard.sim.model import Pool

OD, SPOT = 0, 1


class Fleet:
    def __init__(self, pools: dict[str, Pool], gpus_per_replica: np.ndarray, variant_of: np.ndarray,
                 alloc_order: np.ndarray, replace_on_notice: np.ndarray, dt: float, n_variants: int):
        self.pools = (pools["on-demand"], pools.get("spot"))
        self.dt, self.V = dt, n_variants
        L = len(gpus_per_replica)
        self.gpr = gpus_per_replica.astype(float)  # [L] GPUs per replica
        self.variant_of, self.order = variant_of, alloc_order
        self.replace_on_notice = replace_on_notice  # [L] bool
        self.delay = [math.ceil(p.lead_time_s / dt) if p else 1 for p in self.pools]
        self.notice = [max(1, math.ceil(p.notice_s / dt)) if p else 1 for p in self.pools]
        self.R, self.Rn = max(self.delay) + 1, max(self.notice) + 1
        self.ready = np.zeros((L, 2))
        self.pipe = np.zeros((L, 2, self.R))  # ring by completion step
        self.pipe_total = np.zeros((L, 2))
        self.dying = np.zeros((L, 2, self.Rn))  # ring by end of notice
        self.dying_total = np.zeros((L, 2))
        self.unsched = np.zeros((L, 2))
        self.unsched_since = np.full((L, 2), np.inf)
        self.target = np.zeros((L, 2))
        self.lost = np.zeros((L, 2))  # replicas interrupted since the policies last looked
        self.gpu_seconds = np.zeros((L, 2))

    def advance(self, k: int) -> None:
        """Start of step k: starting replicas whose lead time ended become ready; notices end."""
        slot = k % self.R
        self.ready += self.pipe[:, :, slot]
        self.pipe_total -= self.pipe[:, :, slot]
        self.pipe[:, :, slot] = 0
        dslot = k % self.Rn
        self.dying_total -= self.dying[:, :, dslot]
        self.dying[:, :, dslot] = 0

    def bill(self) -> None:
        self.gpu_seconds += (self.ready + self.pipe_total + self.dying_total) * self.gpr[:, None] * self.dt

    def existing(self, p: int) -> np.ndarray:
        counted = self.ready[:, p] + self.pipe_total[:, p]
        return counted + np.where(self.replace_on_notice, 0.0, self.dying_total[:, p])

    def used_gpus(self, p: int) -> np.ndarray:
        """[V] GPUs held in pool p per variant."""
        held = (self.ready[:, p] + self.pipe_total[:, p] + self.dying_total[:, p]) * self.gpr
        return np.bincount(self.variant_of, weights=held, minlength=self.V)

    def reconcile(self, k: int, t: float) -> None:
        """Bring every lane-pool toward its target (vectorised)."""
        for p, pool in enumerate(self.pools):
            want = self.target[:, p] - self.existing(p)
            if (want > 0).any():
                self._grow(p, pool, np.maximum(want, 0), k, t)
            else:
                self.unsched[:, p] = 0
            if (want < 0).any():
                self._shrink(p, np.maximum(-want, 0), k)
            stuck = self.unsched[:, p] > 0
            self.unsched_since[:, p] = np.where(stuck, np.minimum(self.unsched_since[:, p], t), np.inf)

    def _grow(self, p: int, pool: Pool | None, want: np.ndarray, k: int, t: float) -> None:
        if pool is None or not pool.available_at(t):
            free = np.zeros(self.V)
        else:
            free = np.maximum(pool.max_nodes * pool.gpus_per_node - self.used_gpus(p), 0)
        req = want[self.order] * self.gpr[self.order]  # GPUs wanted, in allocation order
        var = self.variant_of[self.order]
        cum = np.zeros_like(req)
        for v in range(self.V):  # cumulative demand inside each variant
            m = var == v
            cum[m] = np.cumsum(req[m])
        granted_gpus = np.clip(free[var] - (cum - req), 0, req)
        grant = np.zeros_like(want)
        grant[self.order] = np.floor(granted_gpus / self.gpr[self.order] + 1e-9)
        slot = (k + self.delay[p]) % self.R
        self.pipe[:, p, slot] += grant
        self.pipe_total[:, p] += grant
        self.unsched[:, p] = want - grant

    def _shrink(self, p: int, excess: np.ndarray, k: int) -> None:
        """Remove `excess` replicas: unschedulable first, then the newest starting ones, then ready."""
        self.unsched[:, p] = 0
        lanes = np.flatnonzero((excess > 0) & (self.pipe_total[:, p] > 0))
        if len(lanes):
            newest = (k + self.delay[p] - np.arange(self.R)) % self.R  # ring slots, newest first
            ring = self.pipe[lanes, p][:, newest]
            want = excess[lanes][:, None]
            take = np.clip(want - (np.cumsum(ring, axis=1) - ring), 0, ring)
            self.pipe[lanes[:, None], p, newest[None, :]] = ring - take
            removed = take.sum(1)
            self.pipe_total[lanes, p] -= removed
            excess = excess.copy()
            excess[lanes] -= removed
        self.ready[:, p] -= np.minimum(excess, self.ready[:, p])

    def interrupt(self, k: int, rngs: list[np.random.Generator]) -> np.ndarray:
        """Spot preemptions this step; returns [L] ready replicas lost (to fail/drain their requests)."""
        pool = self.pools[SPOT]
        lost_ready = np.zeros(len(self.gpr))
        if pool is None or pool.preemption_rate_per_node_hour <= 0:
            return lost_ready
        p_node = pool.preemption_rate_per_node_hour * self.dt / 3600.0
        gpus = (self.ready[:, SPOT] + self.pipe_total[:, SPOT]) * self.gpr
        for v in range(self.V):
            lanes = np.flatnonzero((self.variant_of == v) & (gpus > 0))
            if not len(lanes):
                continue
            nodes = int(math.ceil(gpus[lanes].sum() / pool.gpus_per_node))
            for _ in range(rngs[v].binomial(nodes, p_node)):
                # pods spread over nodes: a node's GPUs belong to lanes in proportion to their GPUs
                share = rngs[v].multinomial(pool.gpus_per_node, gpus[lanes] / gpus[lanes].sum())
                for lane, g in zip(lanes, share):
                    n = math.floor(g / self.gpr[lane]) + (rngs[v].random() < (g / self.gpr[lane]) % 1)
                    if n:
                        lost_ready[lane] += self._evict(lane, float(n), k)
        return lost_ready

    def _evict(self, lane: int, n: float, k: int) -> float:
        from_ready = min(n, self.ready[lane, SPOT])
        self.ready[lane, SPOT] -= from_ready
        rest = n - from_ready
        for j in range(self.R):
            if rest <= 0:
                break
            slot = (k + j) % self.R
            take = min(rest, self.pipe[lane, SPOT, slot])
            self.pipe[lane, SPOT, slot] -= take
            self.pipe_total[lane, SPOT] -= take
            rest -= take
        gone = n - rest
        dslot = (k + self.notice[SPOT]) % self.Rn
        self.dying[lane, SPOT, dslot] += gone
        self.dying_total[lane, SPOT] += gone
        self.lost[lane, SPOT] += gone
        return from_ready
