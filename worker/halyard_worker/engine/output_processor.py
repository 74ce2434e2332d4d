"""OutputProcessor: core deltas -> `RequestOutput` snapshots. Never imports torch.

Runs outside the engine's step loop. `stream=True` detokenizes each step
(streaming snapshots carry text); `stream=False` (the offline `LLM`, which
only returns final outputs) decodes a request's text once when it finishes,
unless it has stop strings, which need the text as it grows.
"""
from __future__ import annotations

from halyard_worker.engine.detokenizer import IncrementalDetokenizer
from halyard_worker.engine.output import CoreOutput, RequestState
from halyard_worker.engine.types import RequestOutput, SamplingParams


class OutputProcessor:
    """Per-request output state for every request the caller has added."""

    def __init__(self, tokenizer, stream: bool = True):
        self.tokenizer = tokenizer
        self.stream = stream
        self.states: dict[str, RequestState] = {}

    def add(self, request_id: str, prompt: str | None, prompt_ids, params: SamplingParams) -> None:
        detok = IncrementalDetokenizer(self.tokenizer, params.stop, params.include_stop_str_in_output,
                                       params.skip_special_tokens)
        self.states[request_id] = RequestState(
            request_id, prompt if isinstance(prompt, str) else None, tuple(prompt_ids), params, detok,
            self.tokenizer, stream=self.stream)

    def process(self, outputs: list[CoreOutput], publish_unfinished: bool = True):
        """Apply one step's deltas -> (snapshots, ids finished here by a stop string).

        The core still runs the ids in the second list: the caller finishes
        them there (`LLMEngine.finish_request`). Deltas for requests unknown
        here (already finished, never added) are dropped."""
        snapshots: list[RequestOutput] = []
        stopped: list[str] = []
        for out in outputs:
            state = self.states.get(out.request_id)
            if state is None:
                continue
            state.advance(out)
            if not out.new_token_ids and out.finish_reason is None and not state.finished:
                continue  # a prompt chunk's logprobs only: nothing to publish yet
            if state.finished:
                del self.states[out.request_id]
                if out.finish_reason is None:
                    stopped.append(out.request_id)
            elif not publish_unfinished:
                continue
            snapshots.append(state.snapshot())
        return snapshots, stopped

    def fail(self, request_id: str) -> bool:
        """Forget a request whose caller gets an error instead; True if it was known."""
        return self.states.pop(request_id, None) is not None
