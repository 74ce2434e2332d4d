"""The prefix key of a request (pure): what the engine's prefix cache would share.

The engine hashes KV blocks of `block_size` tokens. The router has no tokenizer,
so text is cut into blocks of `block_size * CHARS_PER_TOKEN` characters (English
BPE averages about four characters a token); token-id prompts are cut exactly.
The key covers the first `prefix_blocks` whole blocks, or the whole prompt when
it is shorter: requests whose leading blocks agree get the same key, so they
land where those blocks are already cached.
"""
from __future__ import annotations

import hashlib
import json

CHARS_PER_TOKEN = 4


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def chat_text(messages: list) -> str:
    """The messages as one string, in order (role and text), the way a chat
    template lays them out; non-text parts are left out."""
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"<{message.get('role', '')}>{content if isinstance(content, str) else ''}")
    return "".join(parts)


def leading_text(text: str, block_size: int, prefix_blocks: int) -> str:
    """Whole leading blocks of `text` (all of it when shorter than one block)."""
    block_chars = block_size * CHARS_PER_TOKEN
    whole = min(prefix_blocks, len(text) // block_chars)
    return text[: whole * block_chars] if whole else text


def leading_tokens(tokens: list, block_size: int, prefix_blocks: int) -> list:
    whole = min(prefix_blocks, len(tokens) // block_size)
    return tokens[: whole * block_size] if whole else tokens


def prefix_key(body: dict, block_size: int = 16, prefix_blocks: int = 16) -> int | None:
    """64-bit key of a completions or chat body's leading blocks; None when the
    body has no prompt the router understands (it is then routed by load)."""
    if isinstance(body.get("messages"), list):
        return _digest(leading_text(chat_text(body["messages"]), block_size, prefix_blocks).encode())
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return _digest(leading_text(prompt, block_size, prefix_blocks).encode())
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return _digest(json.dumps(leading_tokens(prompt, block_size, prefix_blocks)).encode())
    return None
