"""Continuous-batching scheduler. Plain Python: never imports torch.

Each step has one token budget (`max_num_batched_tokens`) shared by decodes
and prefill chunks, so chunked prefill and prefix caching are one algorithm:
a request is scheduled for `min(tokens it still needs, budget left)` tokens.
Order is priority (lower value first), then arrival. When KV blocks run out,
or a more urgent request waits while the batch is full, the least urgent
running request (latest arrival among the lowest priority) is preempted: its
blocks are freed and it later recomputes its tokens (prefix cache helps).

Per step the scheduler also counts its prefill budget: the step's budget
minus its decode tokens (what prefill could have taken) and the prefill
tokens it scheduled (prompt chunks and recomputation). Their ratio is the
share of the prefill budget in use: 1 when prefill fills every step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from halyard_worker.engine.block_manager import BlockManager
from halyard_worker.engine.sequence import Sequence, SeqStatus, check_stop_token
from halyard_worker.engine.types import SamplingParams


@dataclass(frozen=True)
class SchedulerConfig:
    """Scheduling limits. `max_model_len` bounds prompt + output tokens."""

    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int


@dataclass(frozen=True)
class NewRequestData:
    """A request the runner has not seen (or must rebuild after preemption).

    `token_ids` are all known tokens; the KV of the first
    `num_computed_tokens` is already in `block_ids` (prefix-cache hit).
    """

    request_id: str
    token_ids: tuple[int, ...]
    num_prompt_tokens: int
    block_ids: tuple[int, ...]
    num_computed_tokens: int
    params: SamplingParams


@dataclass(frozen=True)
class CachedRequestData:
    """The requests the runner already holds, column-wise: only what changed.

    `num_computed_tokens[i]` belongs to `request_ids[i]`; `new_block_ids`
    holds only the requests that got blocks this step. The runner appends
    its own sampled tokens, so no token ids travel here.
    """

    request_ids: tuple[str, ...] = ()
    num_computed_tokens: tuple[int, ...] = ()
    new_block_ids: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.request_ids)


@dataclass(frozen=True)
class SchedulerOutput:
    """One step's work. `num_scheduled_tokens[req]` tokens are computed for
    each request starting at its `num_computed_tokens`; a request samples a
    token when that reaches its last known token. `finished_request_ids`
    lists requests the runner should forget (finished or aborted); a
    preempted request comes back later as a `NewRequestData`."""

    new_requests: tuple[NewRequestData, ...]
    cached_requests: CachedRequestData
    num_scheduled_tokens: dict[str, int]
    finished_request_ids: tuple[str, ...]

    @property
    def total_num_scheduled_tokens(self) -> int:
        return sum(self.num_scheduled_tokens.values())

    @property
    def is_empty(self) -> bool:
        return not self.num_scheduled_tokens


@dataclass(frozen=True)
class RunnerOutput:
    """What the runner produced for one step: a sampled token per request
    that reached its last token, and optional logprobs as plain numbers:
    (sampled logprob, ((token_id, logprob), ...) top-N). `prompt_logprobs`:
    for requests asking for them, (position, token logprob, top-N) of each
    prompt position computed this step (position >= 1). `failed` maps a
    request whose sampling raised to the error text; it got no token."""

    sampled: dict[str, int]
    logprobs: dict[str, tuple[float, tuple[tuple[int, float], ...]]]
    prompt_logprobs: dict[str, tuple[tuple[int, float, tuple[tuple[int, float], ...]], ...]] = \
        field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class Scheduler:
    """Holds waiting and running sequences; plans steps; applies results."""

    def __init__(self, config: SchedulerConfig, block_manager: BlockManager):
        self.config = config
        self.bm = block_manager
        self.waiting: list[Sequence] = []
        self.running: list[Sequence] = []
        self.requests: dict[str, Sequence] = {}
        self.num_preemptions = 0
        self._preempted_this_step = False  # an out-of-blocks preemption pauses admissions
        self._forget: list[str] = []
        self._running_sorted = True
        self.prefill_tokens_total = 0  # tokens scheduled for prefill, all steps
        self.prefill_budget_total = 0  # per step: the token budget minus its decode tokens, summed
        self._step_decodes = 0

    # -- requests -----------------------------------------------------
    def add(self, seq: Sequence) -> None:
        if seq.request_id in self.requests:
            raise ValueError(f"request_id {seq.request_id!r} is already in use")
        self.requests[seq.request_id] = seq
        seq.token_limit = seq.length_limit(self.config.max_model_len)
        seq.status = SeqStatus.WAITING
        self.waiting.append(seq)

    def finish(self, request_id: str, reason: str) -> Sequence | None:
        """End a request (abort, stop string): free its blocks at once."""
        seq = self.requests.pop(request_id, None)
        if seq is None:
            return None
        if seq in self.running:
            self.running.remove(seq)
        if seq in self.waiting:
            self.waiting.remove(seq)
        self.bm.free_seq(seq)
        seq.status = SeqStatus.FINISHED
        seq.finish_reason = seq.finish_reason or reason
        self._forget.append(request_id)
        return seq

    def has_unfinished(self) -> bool:
        return bool(self.requests)

    # -- planning -----------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        if not self._running_sorted:  # only admissions reorder it; removals keep the order
            self.running.sort(key=lambda s: s.sort_key)
            self._running_sorted = True
        if self.waiting:
            self.waiting.sort(key=lambda s: s.sort_key)
        self._preempt_for_urgent_waiting()
        budget = self.config.max_num_batched_tokens
        scheduled: dict[str, int] = {}
        new: list[NewRequestData] = []
        cached = CachedRequestData()
        budget = self._schedule_running(budget, scheduled, cached)
        if not self._preempted_this_step:
            budget = self._schedule_waiting(budget, scheduled, new)
        forget, self._forget = tuple(self._forget), []
        if scheduled:
            limit = self.config.max_num_batched_tokens
            self.prefill_tokens_total += limit - budget - self._step_decodes
            self.prefill_budget_total += limit - self._step_decodes
        return SchedulerOutput(tuple(new), cached, scheduled, forget)

    def _schedule_running(self, budget, scheduled, cached: CachedRequestData) -> int:
        """Running requests in order, while the budget lasts; fills `cached`
        (its lists are built here, then frozen with the output) and counts the
        step's decodes: a request computing its one last known token past its
        prompt (every other token is prefill: a prompt chunk or a recompute)."""
        self._preempted_this_step = False
        ids, computed, decodes = [], [], 0
        block_size, running = self.bm.block_size, self.running
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            done = seq.num_computed_tokens
            left = len(seq.token_ids) - done
            n = min(left, budget)
            if done + n > len(seq.block_ids) * block_size:  # needs blocks
                if not self._make_room(seq, n):
                    break
                cached.new_block_ids[seq.request_id] = tuple(self.bm.allocate(seq, n))
            scheduled[seq.request_id] = n
            ids.append(seq.request_id)
            computed.append(done)
            decodes += left == 1 and done >= seq.num_prompt_tokens
            budget -= n
            i += 1
        object.__setattr__(cached, "request_ids", tuple(ids))
        object.__setattr__(cached, "num_computed_tokens", tuple(computed))
        self._step_decodes = decodes
        return budget

    def _make_room(self, seq: Sequence, n: int) -> bool:
        """Preempt the least urgent running requests until `seq` can grow by n
        tokens; False if `seq` itself had to go."""
        while not self.bm.can_allocate(seq, n):
            victim = self.running[-1]
            self._preempt(victim)
            if victim is seq:
                break
        return seq.status is SeqStatus.RUNNING

    def _schedule_waiting(self, budget, scheduled, new) -> int:
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            hits = self.bm.lookup_prefix(seq) if seq.params.prompt_logprobs is None else []
            n = min(seq.num_tokens - len(hits) * self.bm.block_size, budget)
            if not self.bm.can_admit(seq, hits, n):
                break  # FCFS within priority: do not let later requests jump ahead
            hit_tokens = self.bm.admit(seq, hits)
            if seq.generation == 0:
                seq.num_cached_tokens = hit_tokens
            self.bm.allocate(seq, n)
            self.waiting.pop(0)
            seq.status = SeqStatus.RUNNING
            seq.generation += 1
            self.running.append(seq)
            self._running_sorted = False
            scheduled[seq.request_id] = n
            new.append(NewRequestData(
                seq.request_id, tuple(seq.token_ids), seq.num_prompt_tokens,
                tuple(seq.block_ids), seq.num_computed_tokens, seq.params))
            budget -= n
        return budget

    def _preempt_for_urgent_waiting(self) -> None:
        """Preempt less urgent running requests that block a more urgent waiting one."""
        while self.waiting and self.running:
            head, worst = self.waiting[0], self.running[-1]
            if head.priority >= worst.priority:
                return
            n = min(head.num_tokens, self.config.max_num_batched_tokens)
            full = len(self.running) >= self.config.max_num_seqs
            short = self.bm.blocks_needed(head, n) > self.bm.num_free_blocks
            if not (full or short):
                return
            self._preempt(worst)
            self.waiting.sort(key=lambda s: s.sort_key)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.bm.free_seq(seq)
        seq.status = SeqStatus.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self._preempted_this_step = True
        self.waiting.append(seq)
        self.waiting.sort(key=lambda s: s.sort_key)
        # the runner keeps its mirror (and RNG); readmission resends the tokens

    # -- results --------------------------------------------------------
    def update(self, out: SchedulerOutput, result: RunnerOutput) -> list[tuple[Sequence, int]]:
        """Advance KV progress, append sampled tokens, finish on stop tokens/length.

        Returns (sequence, new token id) for every request that got a token
        this step; finished ones are already freed and have `finish_reason`.
        """
        changed = []
        requests, sampled, bm = self.requests, result.sampled, self.bm
        caching, block_size, running = bm.enable_prefix_caching, bm.block_size, SeqStatus.RUNNING
        for request_id, n in out.num_scheduled_tokens.items():
            seq = requests.get(request_id)
            if seq is None or seq.status is not running:
                continue
            seq.num_computed_tokens += n
            if caching and seq.num_computed_tokens // block_size > len(seq.block_hashes):
                bm.cache_full_blocks(seq)
            token = sampled.get(request_id)
            if token is None:
                continue
            seq.token_ids.append(token)
            changed.append((seq, token))
            if token in seq.stop_check_ids or len(seq.token_ids) >= seq.token_limit:
                reason = check_stop_token(seq, token, self.config.max_model_len)
                if reason is not None:
                    seq.finish_reason = reason
                    self.finish(request_id, reason)
        return changed
