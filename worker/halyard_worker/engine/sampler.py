"""Token sampling on the runner side (torch).

Order, as in transformers: logit_bias -> penalties -> min_tokens mask -> greedy argmax,
or temperature -> top-k -> top-p -> min-p -> draw. Penalties and draws are
batched tensor ops over the step's rows: penalties count each row's tokens
with one scatter over its padded history, and each row's draw is noise that
depends only on its request's seed and output count (`sampling_noise`), so
a seeded request is reproducible whatever it is batched with. Logprobs come
from the raw model distribution (log_softmax of the logits before any
processing). `sample_isolated` samples row by row when the batched call
raised, so one request's failure fails that request alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from halyard_worker.engine.sampling_noise import exponential_noise
from halyard_worker.engine.sampling_table import (
    FREQUENCY, MIN_P, PRESENCE, REPETITION, TEMPERATURE, TOP_P, SamplingRows, TokenHistory, sampling_values,
)
from halyard_worker.engine.types import SamplingParams


@dataclass
class SamplingRow:
    """What the sampler needs about one request at this step. `prompt_ids` and
    `output_ids` are read (for penalties) only when `sample` gets no table;
    a table carries them as a `TokenHistory`. `seed` is the request's draw
    seed (None: 0)."""

    params: SamplingParams
    prompt_ids: list[int]
    output_ids: list[int]
    seed: int | None
    eos_token_ids: tuple[int, ...]
    num_output: int | None = None  # outputs so far, when output_ids is left empty

    @property
    def n_out(self) -> int:
        return len(self.output_ids) if self.num_output is None else self.num_output


def apply_top_k(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """logits: [S, V]; k: [S] int64 (<= 0 disables). Keeps the k largest per row."""
    vocab = logits.shape[-1]
    k = torch.where(k <= 0, vocab, k.clamp(max=vocab))
    kth = logits.sort(dim=-1, descending=True).values.gather(1, (k - 1)[:, None])  # [S, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def apply_top_p(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """logits: [S, V]; p: [S] in (0, 1]. Keeps the smallest set of most likely
    tokens whose probability reaches p (always at least one)."""
    sorted_logits, idx = logits.sort(dim=-1, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # ascending
    drop = cum <= (1 - p)[:, None]
    drop[:, -1] = False
    drop = drop.scatter(1, idx, drop)
    return logits.masked_fill(drop, float("-inf"))


def apply_min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Drop tokens whose probability is below min_p * (top probability)."""
    probs = logits.softmax(dim=-1)
    threshold = probs.max(dim=-1, keepdim=True).values * min_p[:, None]
    return logits.masked_fill(probs < threshold, float("-inf"))


def apply_penalties(logits: torch.Tensor, floats: torch.Tensor, history: TokenHistory) -> torch.Tensor:
    """logits [S, V]; floats [S, len(FLOATS)] the rows' parameters. Repetition
    (prompt + output tokens, transformers semantics), presence and frequency
    (output tokens, OpenAI semantics) penalties on `history.rows`, in one
    scatter per kind over their padded histories; returns new logits."""
    sub, f = logits.index_select(0, history.rows), floats.index_select(0, history.rows)  # [P, V], [P, F]
    p, vocab = sub.shape
    ids = history.token_ids  # [P, L]
    pos = torch.arange(ids.shape[1], device=ids.device)[None, :]
    valid = (pos < history.num_tokens[:, None]) & (ids < vocab)
    is_out = valid & (pos >= history.num_prompt[:, None])
    spare = torch.full_like(ids, vocab)  # padding lands in a dropped extra column
    seen = torch.zeros(p, vocab + 1, dtype=torch.bool, device=sub.device)
    seen = seen.scatter_(1, torch.where(valid, ids, spare), True)[:, :vocab]
    counts = torch.zeros(p, vocab + 1, dtype=sub.dtype, device=sub.device)
    counts = counts.scatter_add_(1, torch.where(is_out, ids, spare), is_out.to(sub.dtype))[:, :vocab]
    rep = f[:, REPETITION, None].to(sub.dtype)
    sub = torch.where(seen, torch.where(sub > 0, sub / rep, sub * rep), sub)
    sub = sub - (f[:, FREQUENCY, None].to(sub.dtype) * counts
                 + f[:, PRESENCE, None].to(sub.dtype) * (counts > 0).to(sub.dtype))
    return logits.index_copy(0, history.rows, sub)


def apply_logit_bias(logits: torch.Tensor, rows: list[SamplingRow]) -> torch.Tensor:
    """Add each request's `logit_bias` to its row, in place (ids checked at intake)."""
    for i, row in enumerate(rows):
        if row.params.logit_bias:
            ids, bias = zip(*row.params.logit_bias)
            logits[i, list(ids)] += torch.tensor(bias, dtype=logits.dtype, device=logits.device)
    return logits


def mask_min_tokens(logits: torch.Tensor, rows: list[SamplingRow]) -> torch.Tensor:
    """Forbid EOS and stop tokens until a request has `min_tokens` outputs."""
    for i, row in enumerate(rows):
        if row.n_out >= row.params.min_tokens:
            continue
        banned = list(row.params.stop_token_ids)
        if not row.params.ignore_eos:
            banned.extend(row.eos_token_ids)
        banned = [t for t in banned if t < logits.shape[-1]]
        if banned:
            logits[i, banned] = float("-inf")
    return logits


def _needs_processing(p: SamplingParams, n_out: int) -> bool:
    return (p.repetition_penalty != 1.0 or p.presence_penalty != 0 or p.frequency_penalty != 0
            or n_out < p.min_tokens or bool(p.logit_bias))


def sample(logits: torch.Tensor, rows: list[SamplingRow], table: SamplingRows | None = None):
    """logits: [S, V] float32 -> (token ids: list[int], logprobs per row or None).

    `table` holds the rows' parameters, seeds, draw offsets and penalty
    histories as device tensors (built by the runner from its persistent
    batch); without it they are built from `rows`."""
    logprobs = _logprobs(logits, rows)
    if table is None:
        table = table_of(rows, logits.device)
    if any(_needs_processing(r.params, r.n_out) for r in rows):
        logits = apply_logit_bias(logits.clone(), rows)
        if table.history is not None:
            logits = apply_penalties(logits, table.floats, table.history)
        logits = mask_min_tokens(logits, rows)
    greedy = logits.argmax(dim=-1)  # [S]
    random_idx = [i for i, r in enumerate(rows) if not r.params.greedy]
    if not random_idx:
        return greedy.tolist(), logprobs
    params = table.select(random_idx)
    probs = _warp(logits[random_idx], params).softmax(dim=-1)  # [R, V]
    drawn = (probs / exponential_noise(params.seeds, params.offsets, probs.shape[-1])).argmax(dim=-1)
    idx = torch.tensor(random_idx, dtype=torch.int64, device=greedy.device)
    return greedy.index_copy(0, idx, drawn).tolist(), logprobs


def sample_isolated(logits: torch.Tensor, rows: list[SamplingRow], table: SamplingRows | None = None):
    """Like `sample`, one row at a time: (tokens, logprobs, {row: error}); a
    failed row's token is -1."""
    tokens, logprobs, failed = [], {}, {}
    for i, row in enumerate(rows):
        try:
            (token,), lp = sample(logits[i:i + 1], [row], table.select([i]) if table is not None else None)
        except Exception as err:  # this row's parameters or state: fail it alone
            tokens.append(-1)
            failed[i] = f"{type(err).__name__}: {err}"
            continue
        tokens.append(token)
        if lp is not None:
            logprobs[i] = lp[0]
    return tokens, (logprobs or None), failed


def table_of(rows: list[SamplingRow], device) -> SamplingRows:
    """A `SamplingRows` built from the rows themselves (callers without a persistent batch)."""
    params = [r.params for r in rows]
    values = [sampling_values(p, r.seed or 0) for p, r in zip(params, rows)]
    floats = torch.stack([v.floats for v in values]).to(device)
    offsets = torch.tensor([r.n_out for r in rows], dtype=torch.int64, device=device)
    return SamplingRows(floats, torch.stack([v.top_k for v in values]).to(device),
                        any(p.top_k > 0 for p in params), any(p.top_p < 1 for p in params),
                        any(p.min_p > 0 for p in params), torch.stack([v.seed for v in values]).to(device),
                        offsets, _history_of(rows, device))


def _history_of(rows: list[SamplingRow], device) -> TokenHistory | None:
    """The penalty rows' prompt + output ids, padded to the longest."""
    pen = [i for i, r in enumerate(rows) if r.params.repetition_penalty != 1.0
           or r.params.presence_penalty != 0 or r.params.frequency_penalty != 0]
    if not pen:
        return None
    seqs = [list(rows[i].prompt_ids) + list(rows[i].output_ids) for i in pen]
    ids = torch.zeros(len(pen), max(1, max(map(len, seqs))), dtype=torch.int64)
    for j, seq in enumerate(seqs):
        ids[j, :len(seq)] = torch.tensor(seq, dtype=torch.int64)

    def ints(values):
        return torch.tensor(values, dtype=torch.int64, device=device)

    return TokenHistory(ints(pen), np.asarray(pen), ids.to(device), ints([len(rows[i].prompt_ids) for i in pen]),
                        ints(list(map(len, seqs))))


def _warp(logits: torch.Tensor, table: SamplingRows) -> torch.Tensor:
    logits = logits / table.column(TEMPERATURE).to(logits.dtype)[:, None]
    if table.uses_top_k:
        logits = apply_top_k(logits, table.top_k)
    if table.uses_top_p:
        logits = apply_top_p(logits, table.column(TOP_P).to(logits.dtype))
    if table.uses_min_p:
        logits = apply_min_p(logits, table.column(MIN_P).to(logits.dtype))
    return logits


def _logprobs(logits: torch.Tensor, rows: list[SamplingRow]):
    """Raw log-probabilities for rows that asked: (full [V] row tensor, top-N) per row."""
    wanted = [i for i, r in enumerate(rows) if r.params.logprobs is not None]
    if not wanted:
        return None
    lp = logits[wanted].log_softmax(dim=-1)
    result = {}
    for j, i in enumerate(wanted):
        n = rows[i].params.logprobs
        top = lp[j].topk(n) if n else None
        top_list = tuple(zip(top.indices.tolist(), top.values.tolist())) if n else ()
        result[i] = (lp[j], top_list)
    return result
