"""LLMEngine: step() = schedule -> execute -> update, plus request intake.

Synchronous and single-threaded; `AsyncEngine` drives it from a thread and
`LLM` drives it in a loop.
"""
from __future__ import annotations

import dataclasses
import logging

from halyard_worker.engine.block_manager import BlockManager
from halyard_worker.engine.detokenizer import IncrementalDetokenizer
from halyard_worker.engine.output import RequestState
from halyard_worker.engine.scheduler import Scheduler, SchedulerConfig
from halyard_worker.engine.sequence import Sequence
from halyard_worker.engine.types import (
    EngineConfig, EngineStats, InvalidParameter, RequestOutput, SamplingParams,
)

log = logging.getLogger(__name__)


class LLMEngine:
    """Owns the tokenizer, scheduler and runner of one model."""

    def __init__(self, config: EngineConfig):
        from halyard_worker.engine.setup import build_runner

        self.config = config
        built = build_runner(config)
        self.tokenizer, self.runner = built.tokenizer, built.runner
        self.model_config, self.max_model_len = built.model_config, built.max_model_len
        self.eos_token_ids = built.eos_token_ids
        self.block_manager = BlockManager(built.num_blocks, config.block_size, config.enable_prefix_caching)
        self.scheduler = Scheduler(
            SchedulerConfig(config.max_num_seqs, config.max_num_batched_tokens, self.max_model_len),
            self.block_manager)
        self.states: dict[str, RequestState] = {}
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        log.info("KV cache: %d blocks x %d tokens = %d tokens capacity (max_model_len %d)",
                 built.num_blocks, config.block_size, self.kv_capacity_tokens, self.max_model_len)

    @property
    def kv_capacity_tokens(self) -> int:
        return self.block_manager.num_blocks * self.block_manager.block_size

    # -- intake ------------------------------------------------------------
    def tokenize_prompt(self, prompt: str | list[int]) -> list[int]:
        """Token ids of a prompt, or InvalidParameter("prompt", ...) if unusable."""
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidParameter("prompt", "must not be empty")
            ids = self.tokenizer.encode(prompt, add_special_tokens=True)
        else:
            ids = list(prompt)
            vocab = self.model_config.vocab_size
            if not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
                raise InvalidParameter("prompt", f"token ids must be integers in [0, {vocab})")
        if not ids:
            raise InvalidParameter("prompt", "must not be empty")
        if len(ids) >= self.max_model_len:
            raise InvalidParameter(
                "prompt", f"is {len(ids)} tokens; the limit is {self.max_model_len - 1} "
                f"(max_model_len {self.max_model_len} must leave room for one output token)")
        return ids

    def add_request(self, request_id: str, prompt: str | list[int], params: SamplingParams,
                    priority: int = 0, prompt_ids: list[int] | None = None) -> None:
        if not isinstance(params, SamplingParams):
            raise InvalidParameter("params", f"must be SamplingParams, got {type(params).__name__}")
        if request_id in self.states:
            raise InvalidParameter("request_id", f"{request_id!r} is already in use")
        ids = prompt_ids if prompt_ids is not None else self.tokenize_prompt(prompt)
        self._check_vocab(params)
        self.runner.add_request(request_id, params)  # per-request torch state, before it joins a batch
        seq = Sequence(request_id, ids, params, priority=priority, eos_token_ids=self.eos_token_ids)
        detok = IncrementalDetokenizer(self.tokenizer, params.stop, params.include_stop_str_in_output,
                                       params.skip_special_tokens)
        self.states[request_id] = RequestState(
            seq, prompt if isinstance(prompt, str) else None, detok, self.tokenizer)
        self.scheduler.add(seq)
        self.prompt_tokens_total += len(ids)

    def _check_vocab(self, params: SamplingParams) -> None:
        vocab = self.model_config.vocab_size
        bad = [t for t, _ in params.logit_bias if t >= vocab]
        if bad:
            raise InvalidParameter("logit_bias", f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")

    def abort(self, request_id: str, reason: str = "abort") -> RequestOutput | None:
        """End a request now; returns its final snapshot (finish_reason `reason`)."""
        state = self.states.pop(request_id, None)
        if state is None:
            return None
        self.scheduler.finish(request_id, reason)
        return state.snapshot()

    def _fail(self, request_id: str, error: str) -> RequestOutput | None:
        """End one request that failed inside the step (finish_reason "error")."""
        log.error("request %s failed in the engine: %s", request_id, error)
        out = self.abort(request_id, "error")
        return dataclasses.replace(out, error=error) if out is not None else None

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    # -- the step -------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        out = self.scheduler.schedule()
        if out.is_empty:
            if out.finished_request_ids:
                self.runner.execute(out)
            return []
        result = self.runner.execute(out)
        for rid, raw in result.prompt_logprobs.items():
            if rid in self.states:
                self.states[rid].add_prompt_logprobs(raw)
        changed = self.scheduler.update(out, result)
        outputs = [o for o in (self._fail(rid, err) for rid, err in result.failed.items()) if o]
        for seq, new_ids in changed:
            state = self.states.get(seq.request_id)
            if state is None:
                continue
            outputs.append(self._publish(state, new_ids, result.logprobs.get(seq.request_id)))
        return outputs

    def _publish(self, state: RequestState, new_ids: list[int], raw_logprobs) -> RequestOutput:
        seq = state.seq
        self.generation_tokens_total += len(new_ids)
        if raw_logprobs is not None:
            state.add_logprobs(new_ids[-1], raw_logprobs)
        state.detok.add(new_ids)
        if seq.is_finished:
            state.detok.flush()
        if state.detok.stop_hit is not None:
            seq.stop_reason = state.detok.stop_hit
            seq.finish_reason = "stop"  # a stop string wins over length in the same step
            if not seq.is_finished:
                self.scheduler.finish(seq.request_id, "stop")
        if seq.is_finished:
            self.states.pop(seq.request_id, None)
        return state.snapshot()

    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(
            num_running=len(self.scheduler.running),
            num_waiting=len(self.scheduler.waiting),
            kv_cache_usage=bm.usage,
            kv_capacity_tokens=self.kv_capacity_tokens,
            num_preemptions_total=self.scheduler.num_preemptions,
            prefix_cache_queries_total=bm.prefix_queries,
            prefix_cache_hits_total=bm.prefix_hits,
            prompt_tokens_total=self.prompt_tokens_total,
            generation_tokens_total=self.generation_tokens_total,
        )
