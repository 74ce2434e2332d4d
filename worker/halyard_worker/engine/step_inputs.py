"""One step's flat inputs, planned from the persistent batch with numpy.

Order: single-token decodes first (shortest context first, since the torch
decode attention pads each group of rows to that group's longest context),
then prefill chunks. Only prefill chunks (a few per step) are walked in
Python; decodes are gathered with vectorized indexing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from halyard_worker.engine.input_batch import InputBatch


@dataclass(frozen=True)
class StepPlan:
    """flat: [3, T] int64 (token ids, positions, KV slots), decodes first.
    decode_tables: [D, W] block ids (W = blocks of the longest decode
    context), decode_lens: [D] context lengths including the new token.
    prefills: (q_start, q_len, ctx_len, batch row, num blocks) per chunk;
    prefill_tables: [P, W] their block tables (W = blocks of the longest).
    sample_rows: [S] rows of the flat batch whose logits are sampled;
    sample_batch_rows: [S] the persistent-batch rows they belong to."""

    flat: np.ndarray
    num_decodes: int
    decode_tables: np.ndarray | None
    decode_lens: np.ndarray | None
    prefills: tuple[tuple[int, int, int, int, int], ...]
    prefill_tables: np.ndarray | None
    sample_rows: np.ndarray
    sample_batch_rows: np.ndarray


def plan_step(batch: InputBatch, scheduled: dict[str, int]) -> StepPlan:
    rows = batch.rows_of(list(scheduled))
    counts = np.fromiter(scheduled.values(), dtype=np.int64, count=len(rows))
    starts = batch.num_computed[rows]
    # one new token at or past the last prompt position; a one-token chunk inside
    # the prompt is a prefill chunk (its row may carry a prompt logprob)
    is_decode = (counts == 1) & (starts + 1 >= batch.num_prompt[rows])
    dec_rows, dec_pos = rows[is_decode], starts[is_decode]
    order = np.argsort(dec_pos, kind="stable")
    dec_rows, dec_pos = dec_rows[order], dec_pos[order]
    parts = [(batch.token_ids[dec_rows, dec_pos], dec_pos, batch.slots(dec_rows, dec_pos))]
    samples = [np.nonzero(dec_pos + 1 == batch.num_tokens[dec_rows])[0]]
    sample_batch_rows = [dec_rows[samples[0]]]
    d = len(dec_rows)
    tables = lens = None
    if d:
        lens = dec_pos + 1
        width = -(-int(lens.max()) // batch.block_size)
        tables = batch.block_table[dec_rows, :width]
    prefills, q0 = [], d
    for row, start, n in zip(rows[~is_decode].tolist(), starts[~is_decode].tolist(),
                             counts[~is_decode].tolist()):
        pos = np.arange(start, start + n, dtype=np.int64)
        parts.append((batch.token_ids[row, start:start + n], pos, batch.slots(np.full(n, row), pos)))
        prefills.append((q0, n, start + n, row, int(batch.num_blocks[row])))
        if start + n == batch.num_tokens[row]:
            samples.append(np.array([q0 + n - 1]))
            sample_batch_rows.append(np.array([row]))
        q0 += n
    flat = np.stack([np.concatenate([p[i] for p in parts]) for i in range(3)])
    prefill_tables = None
    if prefills:
        width = max(-(-ctx // batch.block_size) for _, _, ctx, _, _ in prefills)
        prefill_tables = batch.block_table[[p[3] for p in prefills], :width]
    return StepPlan(flat, d, tables, lens, tuple(prefills), prefill_tables,
                    np.concatenate(samples).astype(np.int64),
                    np.concatenate(sample_batch_rows).astype(np.int64))
