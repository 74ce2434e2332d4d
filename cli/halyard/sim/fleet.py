"""Replica and node bookkeeping for every lane (policy variant x deployment) and pool, vectorised.

Pool axis: 0 = on-demand, 1 = spot. A replica moves
    unschedulable (no capacity: stock-out or pool at maxNodes; not billed)
 -> starting (billed, not serving) -> ready (serving)
 -> [spot reclaim] -> dying (notice period; billed, not serving).
A replica placed on a free GPU of a node that is already up starts warm
(cached weights: `Pool.warm_start_s`); one that needs a new node waits for the
node, the image and the weights (`Pool.cold_start_s`); one placed on a free GPU
of a node still provisioning waits for what is left of that (from the pool's
latest launch), never less than a warm start. Nodes are counted per
variant and pool: a node left without replicas is billed until it has been
empty for `consolidateAfter`, so cost is whole nodes, not perfectly packed GPUs.
Interrupted replicas are replaced at once in lanes whose policy drains on the
notice (Halyard: the pod is deleted, the ReplicaSet recreates it); other lanes
replace them when the node is gone (notice over).
"""
from __future__ import annotations

import math

import numpy as np

from halyard.sim.model import Pool

OD, SPOT = 0, 1


class Fleet:
    def __init__(self, pools: dict[str, Pool], gpus_per_replica: np.ndarray, variant_of: np.ndarray,
                 alloc_order: np.ndarray, replace_on_notice: np.ndarray, dt: float, n_variants: int,
                 model_gb: np.ndarray | None = None):
        self.pools = (pools["on-demand"], pools.get("spot"))
        self.dt, self.V = dt, n_variants
        L = len(gpus_per_replica)
        gb = np.full(L, 16.0) if model_gb is None else np.asarray(model_gb, dtype=float)
        self.gpr = gpus_per_replica.astype(float)  # [L] GPUs per replica
        self.variant_of, self.order = variant_of, alloc_order
        self.replace_on_notice = replace_on_notice  # [L] bool
        steps = lambda s: max(1, math.ceil(s / dt))  # noqa: E731
        self.cold = np.array([[steps(p.cold_start_s(g)) if p else 1 for p in self.pools] for g in gb], dtype=int)
        self.warm = np.array([[steps(p.warm_start_s(g)) if p else 1 for p in self.pools] for g in gb], dtype=int)
        notices = [p.notice_s for p in self.pools if p] + [r.notice_s for p in self.pools if p for r in p.reclaims]
        self.R, self.Rn = int(self.cold.max()) + 2, steps(max(notices + [0.0])) + 2
        self.gpn = np.array([p.gpus_per_node if p else 1 for p in self.pools], dtype=float)
        self.ready = np.zeros((L, 2))
        self.pipe = np.zeros((L, 2, self.R))  # ring by completion step
        self.pipe_total = np.zeros((L, 2))
        self.dying = np.zeros((L, 2, self.Rn))  # ring by end of notice
        self.dying_total = np.zeros((L, 2))
        self.unsched = np.zeros((L, 2))
        self.unsched_since = np.full((L, 2), np.inf)
        self.target = np.zeros((L, 2))
        self.lost = np.zeros((L, 2))  # replicas interrupted since the policies last looked
        self.gpu_seconds = np.zeros((L, 2))  # GPU-seconds held by each lane's replicas
        self.cost = np.zeros((L, 2))  # $ of those GPU-seconds at the price of the moment
        self.nodes = np.zeros((n_variants, 2))  # nodes launched (billed) per variant and pool
        self.nodes_up = np.zeros((n_variants, 2))  # ... of which provisioned (the rest still boot)
        self.prov = np.array([steps(p.provisioning_delay_s) if p else 1 for p in self.pools], dtype=int)
        self.arrivals = np.zeros((n_variants, 2, self.R))  # nodes launched, ring by the step they are up
        self.last_launch = np.full((n_variants, 2), -np.inf)
        self.empty_since = np.full((n_variants, 2), np.inf)
        self.idle_gpu_seconds = np.zeros((n_variants, 2))  # GPUs on nodes up that no replica holds
        self.idle_cost = np.zeros((n_variants, 2))
        self.reclaim_plan: dict[int, np.ndarray] = {}  # reclaim event -> [V] nodes to take in all

    # --- time ------------------------------------------------------------------------
    def advance(self, k: int, t: float) -> None:
        """Start of step k: starting replicas whose start-up ended become ready; notices end;
        nodes empty for long enough are removed."""
        slot = k % self.R
        self.ready += self.pipe[:, :, slot]
        self.pipe_total -= self.pipe[:, :, slot]
        self.pipe[:, :, slot] = 0
        dslot = k % self.Rn
        self.dying_total -= self.dying[:, :, dslot]
        self.dying[:, :, dslot] = 0
        self.nodes_up += self.arrivals[:, :, slot]
        self.arrivals[:, :, slot] = 0
        self._consolidate(t)
        np.minimum(self.nodes_up, self.nodes, out=self.nodes_up)

    def _consolidate(self, t: float) -> None:
        need = np.stack([np.ceil(self.live_gpus(p) / self.gpn[p] - 1e-9) for p in (OD, SPOT)], axis=1)
        spare = self.nodes > need
        self.empty_since = np.where(spare, np.minimum(self.empty_since, t), np.inf)
        done = spare & (t - self.empty_since >= np.array([p.consolidate_after_s if p else 0 for p in self.pools]))
        self.nodes = np.where(done, need, self.nodes)
        self.empty_since = np.where(done, np.inf, self.empty_since)

    def bill(self, t: float) -> None:
        price = np.array([p.price_at(t) if p else 0.0 for p in self.pools])
        held = (self.ready + self.pipe_total + self.dying_total) * self.gpr[:, None] * self.dt
        self.gpu_seconds += held
        self.cost += held * price / 3600.0
        idle = np.maximum(self.nodes * self.gpn - np.stack([self.live_gpus(p) for p in (OD, SPOT)], 1), 0) * self.dt
        self.idle_gpu_seconds += idle
        self.idle_cost += idle * price / 3600.0

    # --- counts ----------------------------------------------------------------------
    def existing(self, p: int) -> np.ndarray:
        counted = self.ready[:, p] + self.pipe_total[:, p]
        return counted + np.where(self.replace_on_notice, 0.0, self.dying_total[:, p])

    def live_gpus(self, p: int) -> np.ndarray:
        """[V] GPUs held in pool p per variant by replicas on nodes that are up (not dying)."""
        held = (self.ready[:, p] + self.pipe_total[:, p]) * self.gpr
        return np.bincount(self.variant_of, weights=held, minlength=self.V)

    def free_gpus(self, p: int, t: float) -> np.ndarray:
        """[V] GPUs a new replica could get in pool p now: free GPUs on nodes up, plus new nodes."""
        pool = self.pools[p]
        if pool is None:
            return np.zeros(self.V)
        warm = np.maximum(self.nodes[:, p] * self.gpn[p] - self.live_gpus(p), 0)
        new = np.maximum(pool.max_nodes - self.nodes[:, p], 0) * self.gpn[p] if pool.available_at(t) else 0.0
        return warm + new

    # --- placement -------------------------------------------------------------------
    def reconcile(self, k: int, t: float) -> None:
        """Bring every lane-pool toward its target (vectorised)."""
        for p in (OD, SPOT):
            want = self.target[:, p] - self.existing(p)
            self.unsched[:, p] = 0
            if (want > 0).any():
                waited = np.floor((t - self.last_launch[self.variant_of, p]) / self.dt + 1e-9)  # before this launch
                grant, warm, booting = self._allocate(p, np.maximum(want, 0), t, k)
                boot = np.maximum(self.warm[:, p], self.cold[:, p] - np.minimum(waited, self.cold[:, p])).astype(int)
                for n, delay in ((warm, self.warm[:, p]), (booting, boot), (grant - warm - booting, self.cold[:, p])):
                    np.add.at(self.pipe, (np.arange(len(n)), p, (k + delay) % self.R), n)
                self.pipe_total[:, p] += grant
                self.unsched[:, p] = np.maximum(want, 0) - grant
            if (want < 0).any():
                self._shrink(p, np.maximum(-want, 0), k)
            stuck = self.unsched[:, p] > 0
            self.unsched_since[:, p] = np.where(stuck, np.minimum(self.unsched_since[:, p], t), np.inf)

    def place_ready(self, t: float) -> None:
        """Warm start: targets become Ready replicas at once, as far as the pools hold them."""
        for p in (OD, SPOT):
            grant, _, _ = self._allocate(p, self.target[:, p].copy(), t, 0)
            self.ready[:, p] += grant
        self.nodes_up[:] = self.nodes
        self.arrivals[:] = 0

    def _allocate(self, p: int, want: np.ndarray, t: float, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replicas granted per lane (in allocation order: tier, then lane), how many of them
        start warm on nodes up and how many on free GPUs of nodes still provisioning (nodes
        up are filled first); launches the nodes the rest need."""
        if self.pools[p] is None:
            return np.zeros_like(want), np.zeros_like(want), np.zeros_like(want)
        live = self.live_gpus(p)
        up = self.nodes_up[:, p] * self.gpn[p]
        warm_free = np.maximum(up - live, 0)
        boot_free = np.maximum(self.nodes[:, p] * self.gpn[p] - np.maximum(live, up), 0)
        free = self.free_gpus(p, t)
        order = self.order
        req, var = want[order] * self.gpr[order], self.variant_of[order]
        granted = np.zeros_like(req)
        before = np.zeros_like(req)
        for v in range(self.V):  # cumulative demand inside each variant
            m = var == v
            cum = np.cumsum(req[m])
            granted[m] = np.clip(free[v] - (cum - req[m]), 0, req[m])
            before[m] = np.cumsum(granted[m]) - granted[m]
        warm_gpus = np.clip(warm_free[var] - before, 0, granted)
        boot_gpus = np.clip((warm_free + boot_free)[var] - before, 0, granted) - warm_gpus
        grant, warm, booting = np.zeros_like(want), np.zeros_like(want), np.zeros_like(want)
        grant[order] = np.floor(granted / self.gpr[order] + 1e-9)
        warm[order] = np.minimum(np.floor(warm_gpus / self.gpr[order] + 1e-9), grant[order])
        booting[order] = np.minimum(np.floor(boot_gpus / self.gpr[order] + 1e-9), grant[order] - warm[order])
        held = live + np.bincount(self.variant_of, weights=grant * self.gpr, minlength=self.V)
        launched = np.maximum(np.ceil(held / self.gpn[p] - 1e-9) - self.nodes[:, p], 0)
        if launched.any():
            self.nodes[:, p] += launched
            self.arrivals[:, p, (k + self.prov[p]) % self.R] += launched
            self.last_launch[:, p] = np.where(launched > 0, t, self.last_launch[:, p])
        return grant, warm, booting

    def _shrink(self, p: int, excess: np.ndarray, k: int) -> None:
        """Remove `excess` replicas per lane: the newest starting ones first, then ready ones
        (lanes that shrink have no unschedulable replicas: reconcile only grows the others)."""
        lanes = np.flatnonzero((excess > 0) & (self.pipe_total[:, p] > 0))
        if len(lanes):
            newest = (k + self.R - 1 - np.arange(self.R)) % self.R  # ring slots, newest first
            ring = self.pipe[lanes, p][:, newest]
            want = excess[lanes][:, None]
            take = np.clip(want - (np.cumsum(ring, axis=1) - ring), 0, ring)
            self.pipe[lanes[:, None], p, newest[None, :]] = ring - take
            removed = take.sum(1)
            self.pipe_total[lanes, p] -= removed
            excess = excess.copy()
            excess[lanes] -= removed
        self.ready[:, p] -= np.minimum(excess, self.ready[:, p])

    # --- spot reclaims ---------------------------------------------------------------
    def interrupt(self, k: int, t: float, rngs: list[np.random.Generator]) -> list[tuple[np.ndarray, float]]:
        """Spot nodes reclaimed this step: independent ones at the pool's rate, plus the
        correlated reclaims under way. Returns (ready replicas lost [L], notice s) groups."""
        pool = self.pools[SPOT]
        if pool is None:
            return []
        out = []
        if pool.preemption_rate_per_node_hour > 0:
            p_node = pool.preemption_rate_per_node_hour * self.dt / 3600.0
            counts = [rngs[v].binomial(int(self.nodes[v, SPOT]), p_node) for v in range(self.V)]
            out.append((self._reclaim_nodes(counts, k, pool.notice_s, rngs), pool.notice_s))
        for e, ev in enumerate(pool.reclaims):
            if not ev.at_s <= t < ev.at_s + max(ev.over_s, self.dt):
                continue
            total = self.reclaim_plan.setdefault(e, np.round(ev.share * self.nodes[:, SPOT]))
            frac_now = min(1.0, (t - ev.at_s + self.dt) / max(ev.over_s, self.dt))
            frac_before = max(0.0, (t - ev.at_s) / max(ev.over_s, self.dt))
            counts = [int(math.floor(total[v] * frac_now + 1e-9) - math.floor(total[v] * frac_before + 1e-9))
                      for v in range(self.V)]
            if any(counts):
                out.append((self._reclaim_nodes(counts, k, ev.notice_s, rngs), ev.notice_s))
        return out

    def _reclaim_nodes(self, counts: list[int], k: int, notice_s: float, rngs) -> np.ndarray:
        """Take `counts[v]` spot nodes of each variant. A node's GPUs are drawn without
        replacement from the variant's spot GPUs (each lane's, and the free ones), so a
        lost node takes exactly the GPUs it had and no replica outlives its node."""
        lost_ready = np.zeros(len(self.gpr))
        gpn = int(self.gpn[SPOT])
        for v, n_nodes in enumerate(counts):
            for _ in range(min(n_nodes, int(self.nodes[v, SPOT]))):
                lanes = np.flatnonzero(self.variant_of == v)
                gpus = np.round((self.ready[lanes, SPOT] + self.pipe_total[lanes, SPOT]) * self.gpr[lanes])
                idle = max(self.nodes[v, SPOT] * gpn - gpus.sum(), 0.0)
                colors = np.append(gpus, idle).astype(np.int64)
                self.nodes[v, SPOT] -= 1  # a reclaim takes a node that is up
                self.nodes_up[v, SPOT] = max(self.nodes_up[v, SPOT] - 1, 0)  # (never above nodes)
                if colors.sum() <= 0:
                    continue
                share = rngs[v].multivariate_hypergeometric(colors, min(gpn, int(colors.sum())))[:-1]
                for lane, g in zip(lanes, share):
                    n = math.floor(g / self.gpr[lane]) + (rngs[v].random() < (g / self.gpr[lane]) % 1)
                    if n:
                        lost_ready[lane] += self._evict(lane, float(n), k, notice_s)
        return lost_ready

    def _evict(self, lane: int, n: float, k: int, notice_s: float) -> float:
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
        dslot = (k + max(1, math.ceil(notice_s / self.dt))) % self.Rn
        self.dying[lane, SPOT, dslot] += gone
        self.dying_total[lane, SPOT] += gone
        self.lost[lane, SPOT] += gone
        return from_ready
