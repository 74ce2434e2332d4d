"""Paged KV block accounting with automatic prefix caching. Never imports torch.

A block holds `block_size` consecutive token slots of one sequence. A block
that is full gets a hash chained over its token ids and the previous block's
hash, so equal hashes mean equal prefixes. Freed blocks keep their hash and
go to the back of an LRU free queue: a later request with the same prefix
takes them back (a prefix-cache hit); allocation takes the least recently
freed block from the front and forgets its hash (eviction).
"""
from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass

from halyard_worker.engine.sequence import Sequence


def block_hash(parent: bytes | None, token_ids: tuple[int, ...]) -> bytes:
    """Hash of a full block given its parent block's hash (None for the first).

    A cryptographic digest (not Python's `hash`), so one tenant
    cannot craft a prompt whose blocks collide with another's cached KV."""
    h = hashlib.blake2b(parent or b"", digest_size=16)
    h.update(array("q", token_ids).tobytes())
    return h.digest()


@dataclass
class Block:
    block_id: int
    ref_count: int = 0
    hash: bytes | None = None


class BlockManager:
    """Owns the KV block pool: ref counts, the prefix-hash index, the free LRU.

    Counters (`prefix_queries`, `prefix_hits`) are in tokens: how many prompt
    tokens were looked up on admission and how many were found cached.
    """

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"num_blocks and block_size must be >= 1, got {num_blocks}, {block_size}")
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))
        self.hash_to_block: dict[bytes, int] = {}
        self.prefix_queries = 0
        self.prefix_hits = 0

    # -- queries -------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    @property
    def usage(self) -> float:
        """Fraction of blocks referenced by live sequences (cached-but-free count as free)."""
        return 1.0 - len(self.free) / self.num_blocks

    def blocks_needed(self, seq: Sequence, num_new_tokens: int) -> int:
        total = -(-(seq.num_computed_tokens + num_new_tokens) // self.block_size)
        return max(0, total - len(seq.block_ids))

    def can_allocate(self, seq: Sequence, num_new_tokens: int) -> bool:
        return self.blocks_needed(seq, num_new_tokens) <= len(self.free)

    # -- admission: prefix lookup ---------------------------------------
    def lookup_prefix(self, seq: Sequence) -> list[tuple[bytes, int]]:
        """(hash, block id) of the longest cached prefix of a new sequence; no side effects.

        At least one token is always left to compute, so the step produces
        logits for the last prompt token.
        """
        if not self.enable_prefix_caching:
            return []
        hits, parent = [], None
        for i in range((seq.num_tokens - 1) // self.block_size):
            h = block_hash(parent, tuple(seq.token_ids[i * self.block_size:(i + 1) * self.block_size]))
            block_id = self.hash_to_block.get(h)
            if block_id is None:
                break
            hits.append((h, block_id))
            parent = h
        return hits

    def can_admit(self, seq: Sequence, hits: list[tuple[bytes, int]], num_new_tokens: int) -> bool:
        """Whether the cached prefix plus `num_new_tokens` fit (hit blocks that
        sit in the free queue are taken out of it too)."""
        total = -(-(len(hits) * self.block_size + num_new_tokens) // self.block_size)
        revived = sum(1 for _, b in hits if self.blocks[b].ref_count == 0)
        return total - len(hits) + revived <= len(self.free)

    def admit(self, seq: Sequence, hits: list[tuple[bytes, int]]) -> int:
        """Attach the cached prefix to a new sequence; count the lookup. Returns hit tokens."""
        assert not seq.block_ids and seq.num_computed_tokens == 0
        for h, block_id in hits:
            self._ref(block_id)
            seq.block_ids.append(block_id)
            seq.block_hashes.append(h)
        seq.num_computed_tokens = len(hits) * self.block_size
        self.prefix_queries += seq.num_tokens
        self.prefix_hits += seq.num_computed_tokens
        return seq.num_computed_tokens

    # -- allocation ------------------------------------------------------
    def allocate(self, seq: Sequence, num_new_tokens: int) -> list[int]:
        """Add blocks so `num_new_tokens` more tokens fit; return the new block ids."""
        needed = self.blocks_needed(seq, num_new_tokens)
        if needed > len(self.free):
            raise RuntimeError(f"need {needed} KV blocks, {len(self.free)} free")
        new = [self._take_free() for _ in range(needed)]
        seq.block_ids.extend(new)
        return new

    def cache_full_blocks(self, seq: Sequence) -> None:
        """Hash blocks whose tokens are all computed (call after each step)."""
        num_full = seq.num_computed_tokens // self.block_size
        if not self.enable_prefix_caching or num_full <= len(seq.block_hashes):
            return
        while len(seq.block_hashes) < num_full:
            i = len(seq.block_hashes)
            parent = seq.block_hashes[-1] if seq.block_hashes else None
            h = block_hash(parent, tuple(seq.token_ids[i * self.block_size:(i + 1) * self.block_size]))
            seq.block_hashes.append(h)
            block = self.blocks[seq.block_ids[i]]
            if block.hash is None and h not in self.hash_to_block:
                block.hash = h
                self.hash_to_block[h] = block.block_id

    def free_seq(self, seq: Sequence) -> None:
        """Release a sequence's blocks (tail first, so tails are evicted first)."""
        for block_id in reversed(seq.block_ids):
            block = self.blocks[block_id]
            block.ref_count -= 1
            assert block.ref_count >= 0, f"block {block_id} freed twice"
            if block.ref_count == 0:
                if block.hash is None:
                    # uncached blocks are reused first: nothing to lose
                    self.free[block_id] = None
                    self.free.move_to_end(block_id, last=False)
                else:
                    self.free[block_id] = None
        seq.block_ids = []
        seq.block_hashes = []
        seq.num_computed_tokens = 0

    # -- internals -------------------------------------------------------
    def _ref(self, block_id: int) -> None:
        block = self.blocks[block_id]
        if block.ref_count == 0:
            del self.free[block_id]
        block.ref_count += 1

    def _take_free(self) -> int:
        block_id, _ = self.free.popitem(last=False)
        block = self.blocks[block_id]
        if block.hash is not None:
            if self.hash_to_block.get(block.hash) == block_id:
                del self.hash_to_block[block.hash]
            block.hash = None
        block.ref_count = 1
        return block_id
