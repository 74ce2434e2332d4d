"""LLMEngine, the engine core: step() = schedule -> execute -> update, plus intake.

Synchronous and single-threaded; `AsyncEngine` drives it from a thread and
`LLM` drives it in a loop. A step returns `CoreOutput` deltas (token ids,
finish reasons); text, stop strings and snapshots are the output side's
(`output_processor.OutputProcessor`), which runs outside the step loop.
"""
from __future__ import annotations

import logging

from halyard_worker.engine.block_manager import BlockManager
from halyard_worker.engine.output import CoreOutput
from halyard_worker.engine.scheduler import Scheduler, SchedulerConfig
from halyard_worker.engine.sequence import Sequence
from halyard_worker.engine.types import (
    EngineConfig, EngineStats, InvalidParameter, SamplingParams,
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
                    priority: int = 0, prompt_ids: list[int] | None = None) -> list[int]:
        """Queue a request; returns its prompt token ids. Output state (text,
        snapshots) is the caller's `OutputProcessor`'s, not the core's."""
        if not isinstance(params, SamplingParams):
            raise InvalidParameter("params", f"must be SamplingParams, got {type(params).__name__}")
        if request_id in self.scheduler.requests:
            raise InvalidParameter("request_id", f"{request_id!r} is already in use")
        ids = prompt_ids if prompt_ids is not None else self.tokenize_prompt(prompt)
        self._check_vocab(params)
        self.runner.add_request(request_id, params)  # per-request torch state, before it joins a batch
        seq = Sequence(request_id, ids, params, priority=priority, eos_token_ids=self.eos_token_ids)
        self.scheduler.add(seq)
        self.prompt_tokens_total += len(ids)
        return ids

    def _check_vocab(self, params: SamplingParams) -> None:
        vocab = self.model_config.vocab_size
        bad = [t for t, _ in params.logit_bias if t >= vocab]
        if bad:
            raise InvalidParameter("logit_bias", f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")

    def abort(self, request_id: str) -> CoreOutput | None:
        """End a request now; returns its final delta (finish_reason "abort")."""
        return self.finish_request(request_id, "abort")

    def finish_request(self, request_id: str, reason: str) -> CoreOutput | None:
        """End a request the output side finished (stop string) or the caller aborted."""
        seq = self.scheduler.finish(request_id, reason)
        if seq is None:
            return None
        return CoreOutput(request_id, (), reason, None, None, seq.num_cached_tokens)

    @property
    def request_ids(self) -> list[str]:
        """Requests the core still runs or queues."""
        return list(self.scheduler.requests)

    def _fail(self, request_id: str, error: str) -> CoreOutput | None:
        """End one request that failed inside the step (finish_reason "error")."""
        log.error("request %s failed in the engine: %s", request_id, error)
        out = self.finish_request(request_id, "error")
        return out._replace(error=error) if out is not None else None

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    # -- the step -------------------------------------------------------------
    def step(self) -> list[CoreOutput]:
        """One schedule -> execute -> update; returns the deltas of every
        request that got tokens. No detokenization happens here."""
        out = self.scheduler.schedule()
        if out.is_empty:
            if out.finished_request_ids:
                self.runner.execute(out)
            return []
        result = self.runner.execute(out)
        changed = self.scheduler.update(out, result)
        self.generation_tokens_total += len(changed)
        logprobs, prompt_lps = result.logprobs, result.prompt_logprobs
        outputs = [o for o in (self._fail(rid, err) for rid, err in result.failed.items()) if o]
        outputs += [CoreOutput(seq.request_id, (token,), seq.finish_reason, seq.stop_reason,
                              logprobs.get(seq.request_id) if logprobs else None, seq.num_cached_tokens,
                              prompt_lps.get(seq.request_id) if prompt_lps else None)
                   for seq, token in changed]
        if prompt_lps:  # prompt chunks that sampled nothing yet still carry their logprobs
            done = {o.request_id for o in outputs}
            outputs += [CoreOutput(rid, (), prompt_logprobs=raw) for rid, raw in prompt_lps.items()
                        if rid not in done]
        return outputs

    def shutdown(self) -> None:
        """Release what outlives a step: the other tensor-parallel ranks' processes."""
        self.runner.close()

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
            prefill_tokens_total=self.scheduler.prefill_tokens_total,
            prefill_budget_tokens_total=self.scheduler.prefill_budget_total,
        )
