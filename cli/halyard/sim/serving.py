"""Fluid serving model: each deployment's ready replicas as one batched queueing server.

Per lane and step (dt seconds), with N ready replicas and R running requests:
  batch b = R / N; decode step s(b) = base + per_seq * b (profile);
  prefill share f = admissions/s (smoothed) * prompt tokens / (N * prefill tokens/s),
  at most MAX_PREFILL_SHARE (the engine's per-step token budget keeps decodes going);
  inter-token latency ITL = s(b) / (1 - f)   (chunked prefill steals step time);
  completions = R * dt / (output tokens * ITL)   (memoryless decode lengths);
  admissions (oldest waiting first) <= free batch slots N * min(max_batch,
  KV tokens / context tokens) - R, and <= what the prefill share can take in dt.
Waiting requests are kept by age (one column per step); a request waiting
longer than the queue timeout fails. A request meets its SLO when its TTFT
(wait + prefill of its prompt class + one step) <= ttftP95 and the ITL it saw
(an average over its decode time) <= itlP95.
"""
from __future__ import annotations

import math

import numpy as np

MAX_PREFILL_SHARE = 0.5
ADMIT_SMOOTHING = 0.2  # EWMA weight per step of the admission rate (prefill is chunked over steps)


class Serving:
    def __init__(self, lanes: dict, dt: float, queue_timeout_s: float, ok_by_age: np.ndarray):
        """`lanes`: per-lane arrays (base, per_seq, prefill, bmax, in_tokens, out_tokens, kv,
        itl_slo); `ok_by_age[L, S]`: share of requests admitted at age column k meeting the TTFT SLO."""
        self.c = lanes
        self.dt = dt
        L = len(lanes["base"])
        self.S = max(2, math.ceil(queue_timeout_s / dt) + 1)
        self.queue = np.zeros((L, self.S))  # waiting requests by age column
        self.occupied = 0  # columns [0, occupied) may hold waiting requests
        self.running = np.zeros(L)
        self.running_ok = np.zeros(L)  # running requests whose TTFT met the SLO
        self.itl_avg = np.zeros(L)
        self.admit_rate = np.zeros(L)
        self.ok_by_age = ok_by_age
        ctx = lanes["in_tokens"] + lanes["out_tokens"] / 2
        self.slots_per_replica = np.minimum(lanes["bmax"], lanes["kv"] / ctx)
        self.ctx = ctx
        # accumulators
        self.arrived = np.zeros(L)
        self.completed = np.zeros(L)
        self.ok = np.zeros(L)
        self.failed = np.zeros(L)
        self.admitted_by_age = np.zeros((L, self.S))
        self.itl = np.zeros(L)  # ITL this step (s); 0 when nothing runs

    def lose(self, ready_before: np.ndarray, lost: np.ndarray, notice_s: float) -> None:
        """Replicas lost to an interruption: their running requests drain within the notice.

        A request fails when its remaining decode time exceeds the notice
        (remaining time is memoryless with mean output_tokens * ITL)."""
        hit = lost > 0
        if not hit.any():
            return
        share = np.where(hit, lost / np.maximum(ready_before, 1e-9), 0.0)
        moved = self.running * np.minimum(share, 1.0)
        mean_left = self.c["out_tokens"] * np.maximum(self.itl, self.c["base"])
        failing = moved * np.exp(-notice_s / mean_left)
        ok_share = np.divide(self.running_ok, self.running, out=np.zeros_like(moved), where=self.running > 0)
        self.failed += failing
        self.completed += moved - failing  # finished inside the notice
        self.ok += (moved - failing) * ok_share
        self.running -= moved
        self.running_ok -= moved * ok_share

    def step(self, ready: np.ndarray, arrivals: np.ndarray) -> None:
        c, dt = self.c, self.dt
        up = ready > 0
        n = np.maximum(ready, 1e-9)
        batch = self.running / n
        prefill_share = np.minimum(MAX_PREFILL_SHARE, self.admit_rate * c["in_tokens"] / (n * c["prefill"]))
        itl = (c["base"] + c["per_seq"] * batch) / (1 - prefill_share)
        self.itl = np.where(up & (self.running > 0), itl, 0.0)
        done = np.where(up, np.minimum(self.running, self.running * dt / (c["out_tokens"] * itl)), 0.0)
        ok_share = np.divide(self.running_ok, self.running, out=np.zeros_like(done), where=self.running > 0)
        weight = np.minimum(1.0, dt / (c["out_tokens"] * itl))
        self.itl_avg = np.where(up, self.itl_avg + (itl - self.itl_avg) * weight, self.itl_avg)
        self.ok += done * ok_share * (self.itl_avg <= c["itl_slo"])
        self.completed += done
        self.running -= done
        self.running_ok -= done * ok_share
        self._admit(ready, arrivals)

    def _admit(self, ready: np.ndarray, arrivals: np.ndarray) -> None:
        c = self.c
        self.failed += self.queue[:, -1]
        self.queue[:, -1] = 0
        m = min(self.occupied + 1, self.S)  # columns that can hold requests after the shift
        self.queue[:, 1:m] = self.queue[:, :m - 1]
        self.queue[:, 0] = arrivals
        self.arrived += arrivals
        slots = np.maximum(ready * self.slots_per_replica - self.running, 0)
        prefill_cap = ready * c["prefill"] * self.dt * MAX_PREFILL_SHARE / c["in_tokens"]
        cap = np.minimum(slots, prefill_cap)
        q = self.queue[:, :m]
        rev = q[:, ::-1]  # oldest first
        cum = np.cumsum(rev, axis=1)
        take = np.clip(cap[:, None] - (cum - rev), 0, rev)[:, ::-1]
        q -= take
        self.admitted_by_age[:, :m] += take
        admitted = take.sum(1)
        self.running += admitted
        self.running_ok += (take * self.ok_by_age[:, :m]).sum(1)
        self.admit_rate += ADMIT_SMOOTHING * (admitted / self.dt - self.admit_rate)
        waiting = np.flatnonzero(q.any(axis=0))
        self.occupied = int(waiting[-1]) + 1 if len(waiting) else 0

    def kv_usage(self, ready: np.ndarray) -> np.ndarray:
        return np.where(ready > 0, self.running * self.ctx / np.maximum(ready * self.c["kv"], 1e-9), 0.0)
