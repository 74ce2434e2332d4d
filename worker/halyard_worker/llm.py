"""Offline API: `LLM(model=PATH).generate(prompts, SamplingParams(...))`."""
from __future__ import annotations

from typing import Sequence as Seq

from halyard_worker.engine.output_processor import OutputProcessor
from halyard_worker.engine.types import EngineConfig, InvalidParameter, RequestOutput, SamplingParams


class LLM:
    """Runs the engine in the calling thread until every prompt is done.

    Keywords are `EngineConfig` fields: dtype, quantization, device,
    max_model_len, max_num_seqs, max_num_batched_tokens, block_size,
    kv_cache_memory (bytes, CPU), gpu_memory_utilization,
    enable_prefix_caching, seed, tensor_parallel_size (ranks the model is
    split over: processes this one spawns; `close()` stops them).
    """

    def __init__(self, model: str, **kwargs):
        from halyard_worker.engine.llm_engine import LLMEngine

        self.engine = LLMEngine(EngineConfig(model=str(model), **kwargs))
        self._next_id = 0

    def close(self) -> None:
        """Stop the engine's other tensor-parallel ranks (also at interpreter exit)."""
        self.engine.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def stats(self):
        return self.engine.stats()

    def generate(self, prompts: str | list[int] | Seq[str | list[int]],
                 sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
                 priority: Seq[int] | None = None) -> list[RequestOutput]:
        """One final `RequestOutput` per prompt, in prompt order. A single
        prompt is a string or a list of token ids."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params = sampling_params if sampling_params is not None else SamplingParams()
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise InvalidParameter("sampling_params", f"{len(params)} given for {len(prompts)} prompts")
        priority = list(priority) if priority is not None else [0] * len(prompts)
        token_ids = [self.engine.tokenize_prompt(p) for p in prompts]  # all valid before any starts
        outputs = OutputProcessor(self.engine.tokenizer, stream=False)
        ids = [self._add(outputs, p, t, sp, pr) for p, t, sp, pr in zip(prompts, token_ids, params, priority)]
        final: dict[str, RequestOutput] = {}
        while self.engine.has_unfinished():
            snapshots, stopped = outputs.process(self.engine.step(), publish_unfinished=False)
            for rid in stopped:
                self.engine.finish_request(rid, "stop")
            final.update((out.request_id, out) for out in snapshots)
        return [final[i] for i in ids]

    def _add(self, outputs, prompt, token_ids: list[int], params: SamplingParams, priority: int) -> str:
        request_id = str(self._next_id)
        self._next_id += 1
        self.engine.add_request(request_id, prompt, params, priority, prompt_ids=token_ids)
        outputs.add(request_id, prompt, token_ids, params)
        return request_id
