"""One request's scheduling state. Plain Python: never imports torch."""
from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field

from halyard_worker.engine.types import SamplingParams

_arrival = itertools.count()


class SeqStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """Token ids (prompt then output), KV progress and the block table.

    Invariants: `num_computed_tokens <= len(token_ids)`; the KV of
    `token_ids[:num_computed_tokens]` lives in `block_ids` (slot i of the
    sequence is block `block_ids[i // block_size]`, offset `i % block_size`).
    A preempted sequence keeps its tokens and restarts with
    `num_computed_tokens = 0` (recompute).
    """

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    priority: int = 0
    eos_token_ids: tuple[int, ...] = ()  # any of these ends the request (unless ignore_eos)
    arrival: int = field(default_factory=lambda: next(_arrival))
    token_ids: list[int] = field(default_factory=list)
    status: SeqStatus = SeqStatus.WAITING
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0  # prompt tokens served by the prefix cache (first admission)
    block_ids: list[int] = field(default_factory=list)
    block_hashes: list[bytes] = field(default_factory=list)  # hash of each full block, in order
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    num_preemptions: int = 0
    # bumped on each (re)admission so the runner rebuilds its per-request state
    generation: int = 0
    # the per-token fast check: `check_stop_token` runs only when a token is in
    # `stop_check_ids` (EOS and stop tokens) or the count reaches `token_limit`
    stop_check_ids: frozenset = frozenset()
    token_limit: int = 0

    def __post_init__(self):
        if not self.token_ids:
            self.token_ids = list(self.prompt_token_ids)
        self.stop_check_ids = frozenset(self.eos_token_ids) | frozenset(self.params.stop_token_ids)

    def length_limit(self, max_model_len: int) -> int:
        """Token count (prompt + output) at which the request ends by length."""
        limit = max_model_len
        if self.params.max_tokens is not None:
            limit = min(limit, self.num_prompt_tokens + self.params.max_tokens)
        return limit

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def sort_key(self) -> tuple[int, int]:
        """Lower sorts first: priority value, then arrival (FCFS)."""
        return (self.priority, self.arrival)

    @property
    def is_finished(self) -> bool:
        return self.status is SeqStatus.FINISHED

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(token_id)


def check_stop_token(seq: Sequence, token_id: int, max_model_len: int) -> str | None:
    """Finish reason after `token_id` was appended to `seq`, or None.

    EOS and stop tokens count only after `min_tokens`; `ignore_eos` skips
    EOS but not explicit stop tokens.
    """
    params = seq.params
    n_out = seq.num_output_tokens
    if n_out >= params.min_tokens:
        if token_id in seq.eos_token_ids and not params.ignore_eos:
            seq.stop_reason = None
            return "stop"
        if token_id in params.stop_token_ids:
            seq.stop_reason = token_id
            return "stop"
    if params.max_tokens is not None and n_out >= params.max_tokens:
        return "length"
    if seq.num_tokens >= max_model_len:
        return "length"
    return None
