"""The output side of the engine: detokenized text, stop strings, snapshots.

Never imports torch. The engine core's step emits `CoreOutput` deltas (new
token ids, a finish reason); an `OutputProcessor` (run outside the step
loop: the offline `LLM` after each step, `AsyncEngine` in its output thread)
turns them into `RequestOutput` snapshots and reports which requests hit a
stop string, so the core can finish them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from halyard_worker.engine.detokenizer import IncrementalDetokenizer
from halyard_worker.engine.types import LogprobEntry, RequestOutput, SamplingParams, TokenLogprob


class CoreOutput(NamedTuple):
    """What one step (or an abort) did to one request. Immutable; a NamedTuple
    rather than a frozen dataclass because a step builds one per running
    request and tuple construction is several times cheaper.

    `new_token_ids` were appended this step; `finish_reason` is set once the
    core has finished the request ("stop" for EOS / stop tokens with
    `stop_reason` the token or None, "length", "abort"); `logprobs` is the
    runner's raw (sampled logprob, top-N pairs) for the last new token.
    """

    request_id: str
    new_token_ids: tuple[int, ...]
    finish_reason: str | None = None
    stop_reason: int | None = None
    logprobs: tuple | None = None
    num_cached_tokens: int = 0
    prompt_logprobs: tuple | None = None  # ((position, logprob, top-N pairs), ...) of prompt rows
    error: str | None = None  # with finish_reason "error": why this request alone failed


@dataclass
class RequestState:
    """What has been produced and published for one request so far."""

    request_id: str
    prompt: str | None
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams
    detok: IncrementalDetokenizer
    tokenizer: object
    stream: bool = True
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    num_cached_tokens: int = 0
    sent_text_len: int = 0
    sent_tokens: int = 0
    logprobs: list[LogprobEntry] | None = None
    sent_logprobs: int = 0
    error: str | None = None
    _token_text: dict = field(default_factory=dict)
    _prompt_lps: dict = field(default_factory=dict)  # prompt position -> LogprobEntry

    def add_prompt_logprobs(self, raw) -> None:
        """raw: ((position, logprob, ((token_id, logprob), ...)), ...) from the runner;
        a recomputed position (after preemption) replaces the earlier entry."""
        prompt = self.prompt_token_ids
        for pos, lp, top in raw:
            self._prompt_lps[pos] = LogprobEntry(
                sampled=TokenLogprob(prompt[pos], self._text_of(prompt[pos]), lp),
                top=tuple(TokenLogprob(t, self._text_of(t), v) for t, v in top))

    def prompt_logprobs(self):
        """(None, entry for prompt token 1, ...) once every position is in; else None."""
        n = len(self.prompt_token_ids)
        if self.params.prompt_logprobs is None or len(self._prompt_lps) < n - 1:
            return None
        return (None,) + tuple(self._prompt_lps[p] for p in range(1, n))

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def advance(self, out: CoreOutput) -> None:
        """Apply one core delta: tokens, logprobs, text, stop strings, finish."""
        self.num_cached_tokens = out.num_cached_tokens or self.num_cached_tokens
        if out.error is not None:
            self.error = out.error
        if out.prompt_logprobs:
            self.add_prompt_logprobs(out.prompt_logprobs)
        if out.new_token_ids:
            self.token_ids.extend(out.new_token_ids)
            if out.logprobs is not None:
                self._add_logprobs(out.new_token_ids[-1], out.logprobs)
            if self.stream or self.detok.stop:
                self.detok.add(list(out.new_token_ids))
        if out.finish_reason is not None:
            if not (self.stream or self.detok.stop):
                self.detok.add(self.token_ids)  # decoded once, at the end
            self.detok.flush()
        if self.detok.stop_hit is not None:
            self.finish_reason, self.stop_reason = "stop", self.detok.stop_hit  # wins over length
        elif out.finish_reason is not None:
            self.finish_reason, self.stop_reason = out.finish_reason, out.stop_reason

    def _add_logprobs(self, token_id: int, raw) -> None:
        """raw: (sampled logprob, ((token_id, logprob), ...)) from the runner."""
        if self.logprobs is None:
            self.logprobs = []
        sampled_lp, top = raw
        self.logprobs.append(LogprobEntry(
            sampled=TokenLogprob(token_id, self._text_of(token_id), sampled_lp),
            top=tuple(TokenLogprob(t, self._text_of(t), lp) for t, lp in top)))

    def _text_of(self, token_id: int) -> str:
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id])
            self._token_text[token_id] = text
        return text

    def snapshot(self) -> RequestOutput:
        """Cumulative output plus what changed since the previous snapshot."""
        finished = self.finished
        text = self.detok.text[:self.detok.emitted_len(finished)]
        token_ids = tuple(self.token_ids)
        new_lps = None
        if self.logprobs is not None:
            new_lps = tuple(self.logprobs[self.sent_logprobs:])
            self.sent_logprobs = len(self.logprobs)
        out = RequestOutput(
            request_id=self.request_id, prompt=self.prompt, prompt_token_ids=self.prompt_token_ids,
            token_ids=token_ids, text=text, new_token_ids=token_ids[self.sent_tokens:],
            new_text=text[self.sent_text_len:], finished=finished,
            finish_reason=self.finish_reason if finished else None,
            logprobs=tuple(self.logprobs) if self.logprobs is not None else None,
            new_logprobs=new_lps, num_cached_tokens=self.num_cached_tokens, stop_reason=self.stop_reason,
            prompt_logprobs=self.prompt_logprobs(), error=self.error)
        self.sent_tokens, self.sent_text_len = len(token_ids), len(text)
        return out
