"""The prefix key of a request (pure): what the engine's prefix cache would share.

The engine hashes KV blocks of `block_size` tokens. The router has no tokenizer,
so text is cut into blocks of `block_size * CHARS_PER_TOKEN` characters (English
BPE averages about four characters a token); token-id prompts are cut exactly.

`block_chain` gives the chained hashes of the leading whole blocks (at most
`prefix_blocks`; hash i covers blocks 0..i, as the engine's block hashes do),
or one hash of the whole prompt when it is shorter than a block. Requests
that share leading blocks share the start of their chains whatever their
lengths; the first hash is the consistent-hashing key, the longest chain
seen before says where those blocks were last sent (`PrefixTable`).
"""
from __future__ import annotations

import hashlib
import json

CHARS_PER_TOKEN = 4


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


def _chain(blocks: list[bytes]) -> list[int]:
    out, previous = [], b""
    for block in blocks:
        previous = hashlib.blake2b(previous + block, digest_size=8).digest()
        out.append(int.from_bytes(previous, "big"))
    return out


def block_chain(body: dict, block_size: int = 16, prefix_blocks: int = 16) -> list[int]:
    """Chained 64-bit hashes of a completions or chat body's leading blocks;
    empty when the body has no prompt the router understands (routed by load)."""
    prompt = chat_text(body["messages"]) if isinstance(body.get("messages"), list) else body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        step = block_size * CHARS_PER_TOKEN
        text = leading_text(prompt, block_size, prefix_blocks)
        return _chain([text[i:i + step].encode() for i in range(0, len(text), step)] or [b""])
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        tokens = leading_tokens(prompt, block_size, prefix_blocks)
        return _chain([json.dumps(tokens[i:i + block_size]).encode() for i in range(0, len(tokens), block_size)])
    return []


def prefix_key(body: dict, block_size: int = 16, prefix_blocks: int = 16) -> int | None:
    """The consistent-hashing key: the hash of the first block (None: no prompt)."""
    chain = block_chain(body, block_size, prefix_blocks)
    return chain[0] if chain else None


class PrefixTable:
    """Where each recently routed block chain went: hash -> backend name (LRU,
    at most `capacity` hashes). The router's estimate of the workers' caches."""

    def __init__(self, capacity: int = 200_000):
        from collections import OrderedDict

        self.capacity, self.owner = capacity, OrderedDict()

    def longest(self, chain: list[int]) -> str | None:
        """The backend that last got the longest known prefix of `chain`."""
        for h in reversed(chain):
            if h in self.owner:
                self.owner.move_to_end(h)
                return self.owner[h]
        return None

    def record(self, chain: list[int], backend: str) -> None:
        for h in chain:
            self.owner[h] = backend
            self.owner.move_to_end(h)
        while len(self.owner) > self.capacity:
            self.owner.popitem(last=False)
