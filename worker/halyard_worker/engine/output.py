"""Per-request output state: detokenized text, stop strings, snapshots.

Never imports torch. `RequestState.advance()` takes the tokens a step added
and returns the `RequestOutput` snapshot to publish.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from halyard_worker.engine.detokenizer import IncrementalDetokenizer
from halyard_worker.engine.sequence import Sequence
from halyard_worker.engine.types import LogprobEntry, RequestOutput, TokenLogprob


@dataclass
class RequestState:
    """What has been published for one request so far."""

    seq: Sequence
    prompt: str | None
    detok: IncrementalDetokenizer
    tokenizer: object
    sent_text_len: int = 0
    sent_tokens: int = 0
    logprobs: list[LogprobEntry] | None = None
    sent_logprobs: int = 0
    _token_text: dict = field(default_factory=dict)
    _prompt_lps: dict = field(default_factory=dict)  # prompt position -> LogprobEntry

    def add_prompt_logprobs(self, raw) -> None:
        """raw: ((position, logprob, ((token_id, logprob), ...)), ...) from the runner;
        a recomputed position (after preemption) replaces the earlier entry."""
        prompt = self.seq.prompt_token_ids
        for pos, lp, top in raw:
            self._prompt_lps[pos] = LogprobEntry(
                sampled=TokenLogprob(prompt[pos], self._text_of(prompt[pos]), lp),
                top=tuple(TokenLogprob(t, self._text_of(t), v) for t, v in top))

    def prompt_logprobs(self):
        """(None, entry for prompt token 1, ...) once every position is in; else None."""
        n = len(self.seq.prompt_token_ids)
        if self.seq.params.prompt_logprobs is None or len(self._prompt_lps) < n - 1:
            return None
        return (None,) + tuple(self._prompt_lps[p] for p in range(1, n))

    def add_logprobs(self, token_id: int, raw) -> None:
        """raw: (sampled logprob, ((token_id, logprob), ...)) from the runner."""
        if self.logprobs is None:
            self.logprobs = []
        sampled_lp, top = raw
        entry = LogprobEntry(
            sampled=TokenLogprob(token_id, self._text_of(token_id), sampled_lp),
            top=tuple(TokenLogprob(t, self._text_of(t), lp) for t, lp in top))
        self.logprobs.append(entry)

    def _text_of(self, token_id: int) -> str:
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id])
            self._token_text[token_id] = text
        return text

    def snapshot(self) -> RequestOutput:
        """Cumulative output plus what changed since the previous snapshot."""
        seq = self.seq
        finished = seq.is_finished
        shown = self.detok.emitted_len(finished)
        text = self.detok.text[:shown]
        token_ids = tuple(seq.output_token_ids)
        new_lps = None
        if self.logprobs is not None:
            new_lps = tuple(self.logprobs[self.sent_logprobs:])
            self.sent_logprobs = len(self.logprobs)
        out = RequestOutput(
            request_id=seq.request_id,
            prompt=self.prompt,
            prompt_token_ids=tuple(seq.prompt_token_ids),
            token_ids=token_ids,
            text=text,
            new_token_ids=token_ids[self.sent_tokens:],
            new_text=text[self.sent_text_len:],
            finished=finished,
            finish_reason=seq.finish_reason if finished else None,
            logprobs=tuple(self.logprobs) if self.logprobs is not None else None,
            new_logprobs=new_lps,
            num_cached_tokens=seq.num_cached_tokens,
            stop_reason=seq.stop_reason,
            prompt_logprobs=self.prompt_logprobs(),
        )
        self.sent_tokens, self.sent_text_len = len(token_ids), len(text)
        return out
