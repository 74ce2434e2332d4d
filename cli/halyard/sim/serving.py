"""Fluid serving model: each deployment's ready replicas as one batched queueing server.

Requests carry their prompt and output lengths: waiting requests are kept by
age (one column per step) with their token sums, running ones with theirs.
Per lane and step (dt seconds), with N ready replicas and R running requests:
  batch b = R / N; decode step s(b) = base + per_seq * b (profile);
  prefill share f = admitted prompt tokens/s (smoothed) / (N * prefill tokens/s),
  at most MAX_PREFILL_SHARE (the engine's per-step token budget keeps decodes going);
  inter-token latency ITL = s(b) / (1 - f)   (chunked prefill steals step time);
  completions = R * dt / (mean output tokens of the running ones * ITL);
  admissions (oldest waiting first) <= free batch slots N * max_batch - R, KV tokens
  free N * kv - (running prompt tokens + half their output), and what the
  prefill share can take in dt (prompt tokens).
The engine's prefill budget per second is what its steps leave prefill:
(1 - f) * N * prefill tokens/s (1/ITL steps a second, each with room for
s(b) of prefill, the share it takes at the cap); prefill uses f * N * prefill
tokens/s of it, so the budget in use, f / (1 - f), is 1 at the cap, as the
worker's `halyard:prefill_tokens_total` over `halyard:prefill_budget_tokens_total`.
A request waiting longer than the queue timeout fails. A request meets its
SLO when its TTFT (wait + prefill of its prompt class + one step) <= ttftP95
and the ITL it saw (an average over its decode time) <= itlP95. Requests
running or waiting on a replica that is reclaimed fail unless their remaining
decode fits in the notice (none without notice).
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
        self.q_in = np.zeros((L, self.S))  # their prompt tokens
        self.q_out = np.zeros((L, self.S))  # their output tokens
        self.occupied = 0  # columns [0, occupied) may hold waiting requests
        self.running = np.zeros(L)
        self.run_in = np.zeros(L)  # prompt tokens of the running requests
        self.run_out = np.zeros(L)  # output tokens of the running requests
        self.running_ok = np.zeros(L)  # running requests whose TTFT met the SLO
        self.itl_avg = np.zeros(L)
        self.admit_tokens = np.zeros(L)  # prompt tokens admitted per second (smoothed)
        self.ok_by_age = ok_by_age
        # accumulators
        self.arrived = np.zeros(L)
        self.completed = np.zeros(L)
        self.ok = np.zeros(L)
        self.failed = np.zeros(L)
        self.admitted_by_age = np.zeros((L, self.S))
        self.prompt_done = np.zeros(L)  # prompt tokens of completed requests
        self.output_done = np.zeros(L)  # output tokens of completed requests
        self.prefill_tokens = np.zeros(L)  # prompt tokens computed (the worker's counter)
        self.prefill_budget = np.zeros(L)  # prefill budget of the steps taken, in tokens
        self.itl = np.zeros(L)  # ITL this step (s); 0 when nothing runs

    def _mean_out(self) -> np.ndarray:
        return np.divide(self.run_out, self.running, out=self.c["out_tokens"].copy(), where=self.running > 1e-9)

    def lose(self, ready_before: np.ndarray, lost: np.ndarray, notice_s: float) -> None:
        """Replicas lost to a reclaim: their running and waiting requests drain within the notice.

        A request fails when its remaining decode time exceeds the notice
        (remaining time is memoryless with mean output_tokens * ITL)."""
        hit = lost > 0
        if not hit.any():
            return
        share = np.where(hit, np.minimum(lost / np.maximum(ready_before, 1e-9), 1.0), 0.0)
        mean_left = self._mean_out() * np.maximum(self.itl, self.c["base"])
        fail = np.exp(-notice_s / mean_left)
        moved = self.running * share
        failing = moved * fail
        ok_share = np.divide(self.running_ok, self.running, out=np.zeros_like(moved), where=self.running > 0)
        self.failed += failing
        self.completed += moved - failing  # finished inside the notice
        self.ok += (moved - failing) * ok_share
        for arr in (self.run_in, self.run_out):
            arr -= arr * share
        self.running -= moved
        self.running_ok -= moved * ok_share
        keep = (1 - share * fail)[:, None]  # waiting requests queued on the lost replicas
        self.failed += (self.queue * (1 - keep)).sum(1)
        for arr in (self.queue, self.q_in, self.q_out):
            arr *= keep

    def step(self, ready: np.ndarray, arrivals: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray) -> None:
        """One step: decode, completions, then admissions. `arrivals` [L] requests this step,
        `tokens_in`/`tokens_out` [L] their prompt and output token sums."""
        c, dt = self.c, self.dt
        up = ready > 0
        n = np.maximum(ready, 1e-9)
        batch = self.running / n
        prefill_share = np.minimum(MAX_PREFILL_SHARE, self.admit_tokens / (n * c["prefill"]))
        itl = (c["base"] + c["per_seq"] * batch) / (1 - prefill_share)
        self.itl = np.where(up & (self.running > 0), itl, 0.0)
        busy = np.where(up & (self.running + self.admit_tokens > 0), n * c["prefill"] * dt, 0.0)
        self.prefill_tokens += busy * prefill_share
        self.prefill_budget += busy * (1 - prefill_share)
        mean_out = self._mean_out()
        done = np.where(up, np.minimum(self.running, self.running * dt / (mean_out * itl)), 0.0)
        frac = np.divide(done, self.running, out=np.zeros_like(done), where=self.running > 0)
        ok_share = np.divide(self.running_ok, self.running, out=np.zeros_like(done), where=self.running > 0)
        weight = np.minimum(1.0, dt / (mean_out * itl))
        self.itl_avg = np.where(up, self.itl_avg + (itl - self.itl_avg) * weight, self.itl_avg)
        self.ok += done * ok_share * (self.itl_avg <= c["itl_slo"])
        self.completed += done
        self.prompt_done += frac * self.run_in
        self.output_done += frac * self.run_out
        self.run_in -= frac * self.run_in
        self.run_out -= frac * self.run_out
        self.running -= done
        self.running_ok -= done * ok_share
        self._admit(ready, arrivals, tokens_in, tokens_out)

    def _admit(self, ready: np.ndarray, arrivals: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray) -> None:
        c = self.c
        self.failed += self.queue[:, -1]
        m = min(self.occupied + 1, self.S)  # columns that can hold requests after the shift
        for arr, new in ((self.queue, arrivals), (self.q_in, tokens_in), (self.q_out, tokens_out)):
            arr[:, -1] = 0
            arr[:, 1:m] = arr[:, :m - 1]
            arr[:, 0] = new
        self.arrived += arrivals
        q, qi, qo = self.queue[:, :m], self.q_in[:, :m], self.q_out[:, :m]
        ctx = qi + qo / 2  # KV tokens a request holds on average while it runs
        limits = (  # (per-column amount, what is free) for batch slots, KV tokens, prefill tokens
            (q, ready * c["bmax"] - self.running),
            (ctx, ready * c["kv"] - (self.run_in + self.run_out / 2)),
            (qi, ready * c["prefill"] * self.dt * MAX_PREFILL_SHARE),
        )
        frac = np.ones_like(q)
        for amount, free in limits:
            rev = amount[:, ::-1]  # oldest first
            before = np.cumsum(rev, axis=1) - rev
            share = np.clip((np.maximum(free, 0)[:, None] - before) / np.maximum(rev, 1e-12), 0, 1)[:, ::-1]
            frac = np.minimum(frac, share)
        take = q * frac
        take_in, take_out = qi * frac, qo * frac
        q -= take
        qi -= take_in
        qo -= take_out
        self.admitted_by_age[:, :m] += take
        self.running += take.sum(1)
        self.run_in += take_in.sum(1)
        self.run_out += take_out.sum(1)
        self.running_ok += (take * self.ok_by_age[:, :m]).sum(1)
        self.admit_tokens += ADMIT_SMOOTHING * (take_in.sum(1) / self.dt - self.admit_tokens)
        waiting = np.flatnonzero((q > 1e-9).any(axis=0))
        self.occupied = int(waiting[-1]) + 1 if len(waiting) else 0

    def kv_usage(self, ready: np.ndarray) -> np.ndarray:
        used = self.run_in + self.run_out / 2
        return np.where(ready > 0, used / np.maximum(ready * self.c["kv"], 1e-9), 0.0)
