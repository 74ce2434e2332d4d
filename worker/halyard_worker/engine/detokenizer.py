"""Incremental detokenization and stop strings. Never imports torch.

Text grows by decoding a small window of recent tokens: the window's text
minus the text of its already-emitted prefix is the new text. A window whose
text ends in U+FFFD is an incomplete multi-byte character: nothing is
emitted until a later token completes it. Stop strings are searched in the
text around the newest piece, so a stop string split across tokens is found;
text that could still become a stop string is held back from the emitted
text until decided.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IncrementalDetokenizer:
    """Decodes one request's output tokens as they arrive.

    `text` is everything decoded so far; `emitted_len` is how much of it may
    be shown (everything except a possible stop-string prefix at the end).
    """

    tokenizer: object
    stop: tuple[str, ...] = ()
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    prefix_offset: int = 0
    read_offset: int = 0
    stop_hit: str | None = None

    def __post_init__(self):
        self._max_stop = max((len(s) for s in self.stop), default=0)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens,
                                     clean_up_tokenization_spaces=False)

    def add(self, new_ids: list[int]) -> None:
        """Append tokens; update `text`; set `stop_hit` and truncate on a stop string.
        After a stop string, further tokens change nothing."""
        if self.stop_hit is not None:
            return
        self.token_ids.extend(new_ids)
        prefix = self._decode(self.token_ids[self.prefix_offset:self.read_offset])
        window = self._decode(self.token_ids[self.prefix_offset:])
        if window.endswith("\ufffd") or len(window) <= len(prefix):
            return  # incomplete character (or nothing visible yet): wait
        piece = window[len(prefix):]
        self.prefix_offset, self.read_offset = self.read_offset, len(self.token_ids)
        before = len(self.text)
        self.text += piece
        if self.stop:
            self._check_stop(before)

    def _check_stop(self, before: int) -> None:
        start = max(0, before - self._max_stop + 1)
        best = None
        for s in self.stop:
            i = self.text.find(s, start)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, s)
        if best is not None:
            i, s = best
            self.stop_hit = s
            self.text = self.text[:i + len(s)] if self.include_stop_str_in_output else self.text[:i]

    def flush(self) -> None:
        """At the end of a request: emit what is left, even a broken tail."""
        if self.read_offset < len(self.token_ids) and self.stop_hit is None:
            prefix = self._decode(self.token_ids[self.prefix_offset:self.read_offset])
            window = self._decode(self.token_ids[self.prefix_offset:])
            before = len(self.text)
            self.text += window[len(prefix):].rstrip("\ufffd")
            self.read_offset = len(self.token_ids)
            if self.stop:
                self._check_stop(before)

    def emitted_len(self, finished: bool) -> int:
        """Length of `text` that is safe to show now."""
        if finished or self.stop_hit is not None or not self.stop:
            return len(self.text)
        return max(0, len(self.text) - self._held_back())

    def _held_back(self) -> int:
        """Characters at the end of `text` that are a prefix of some stop string."""
        tail = self.text[-(self._max_stop - 1):] if self._max_stop > 1 else ""
        for k in range(len(tail), 0, -1):
            if any(s.startswith(tail[-k:]) for s in self.stop):
                return k
        return 0
