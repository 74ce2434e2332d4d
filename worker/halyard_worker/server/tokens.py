"""Prompt text -> token ids, without building ids a prompt cannot use.

A multi-megabyte prompt tokenizes to millions of tokens. The Rust tokenizer
releases the GIL while it works, but turning its result into Python lists
(transformers builds `input_ids` and `attention_mask`, the server copied the
ids once more) holds the GIL for a time that grows with the token count, and
the event loop cannot run meanwhile. For long texts `encode_prompt` calls the
Rust tokenizer directly (what transformers' fast tokenizer calls, with the
same options) and reads only the token count when the prompt is too long for
the context: such a prompt is refused with its count, so its ids are never
needed. It asks for an encoding without character offsets
(`encode_batch_fast`, the same ids): a full encoding of millions of tokens
(offsets, token strings, word ids) is freed with the GIL held, 0.2-0.3 s for
a 5 MB prompt on 2 busy cores, and `/health` cannot answer meanwhile; the
offset-free one is freed in a few ms and is computed 2-3x faster.
"""
from __future__ import annotations

from dataclasses import dataclass

DIRECT_CHARS = 16_384  # texts at least this long take the direct path


@dataclass(frozen=True)
class OverlongPrompt:
    """A prompt of `count` tokens, at least the context window: only its length
    is known (`len()`), which is all the context-length check reads."""

    count: int

    def __len__(self) -> int:
        return self.count


def _backend(tokenizer):
    """The Rust tokenizer when calling it equals `tokenizer.encode` (a fast
    tokenizer without truncation, padding or split special tokens), else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "split_special_tokens", False):
        return None
    if backend.truncation is not None or backend.padding is not None or backend.encode_special_tokens:
        return None
    return backend


def encode_prompt(tokenizer, text: str, add_special_tokens: bool, max_model_len: int) -> list[int] | OverlongPrompt:
    """Token ids of `text`, or `OverlongPrompt` when there are >= max_model_len of them."""
    backend = _backend(tokenizer) if len(text) >= DIRECT_CHARS else None
    if backend is None:
        return list(tokenizer.encode(text, add_special_tokens=add_special_tokens))
    encode_batch = getattr(backend, "encode_batch_fast", backend.encode_batch)  # tokenizers >= 0.20
    (encoding,) = encode_batch([text], add_special_tokens=add_special_tokens)
    if len(encoding) >= max_model_len:
        return OverlongPrompt(len(encoding))
    return list(encoding.ids)
