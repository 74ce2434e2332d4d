"""Token sampling on the runner side (torch).

Order, as in transformers: logit_bias -> penalties -> min_tokens mask -> greedy argmax,
or temperature -> top-k -> top-p -> min-p -> draw with the request's own
torch.Generator (so a seeded request is reproducible whatever it is batched
with). Logprobs come from the raw model distribution (log_softmax of the
logits before any processing). `sample_isolated` samples row by row when the
batched call raised, so one request's failure fails that request alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from halyard_worker.engine.sampling_table import MIN_P, TEMPERATURE, TOP_P, SamplingRows, sampling_values
from halyard_worker.engine.types import SamplingParams


@dataclass
class SamplingRow:
    """What the sampler needs about one request at this step."""

    params: SamplingParams
    prompt_ids: list[int]
    output_ids: list[int]
    generator: torch.Generator | None
    eos_token_ids: tuple[int, ...]
    num_output: int | None = None  # outputs so far, when output_ids is left empty (no penalty reads it)

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


def apply_penalties(logits: torch.Tensor, rows: list[SamplingRow]) -> torch.Tensor:
    """Repetition (prompt + output tokens, transformers semantics), presence
    and frequency (output tokens, OpenAI semantics) penalties, in place."""
    vocab = logits.shape[-1]
    for i, row in enumerate(rows):
        p = row.params
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(row.prompt_ids) | set(row.output_ids)), dtype=torch.long,
                                device=logits.device)
            vals = logits[i, seen]
            logits[i, seen] = torch.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
        if (p.presence_penalty or p.frequency_penalty) and row.output_ids:
            out = torch.tensor(row.output_ids, dtype=torch.long, device=logits.device)
            counts = torch.bincount(out, minlength=vocab)[:vocab].to(logits.dtype)
            logits[i] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)
    return logits


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

    `table` holds the rows' temperature / top-k / top-p / min-p as device
    tensors (the runner's persistent `SamplingTable`); without it they are
    built from `rows`' parameters."""
    logprobs = _logprobs(logits, rows)
    if any(_needs_processing(r.params, r.n_out) for r in rows):
        logits = mask_min_tokens(apply_penalties(apply_logit_bias(logits.clone(), rows), rows), rows)
    greedy = logits.argmax(dim=-1)  # [S]
    random_idx = [i for i, r in enumerate(rows) if not r.params.greedy]
    if not random_idx:
        return greedy.tolist(), logprobs
    tokens = greedy.clone()
    params = table.select(random_idx) if table is not None else _table_of([rows[i].params for i in random_idx],
                                                                          logits.device)
    sub = _warp(logits[random_idx], params)
    probs = sub.softmax(dim=-1)
    for j, i in enumerate(random_idx):
        noise = torch.empty_like(probs[j]).exponential_(generator=rows[i].generator)
        tokens[i] = (probs[j] / noise).argmax()
    return tokens.tolist(), logprobs


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


def _table_of(params: list[SamplingParams], device) -> SamplingRows:
    """A `SamplingRows` built from parameter objects (callers without a persistent table)."""
    values = [sampling_values(p) for p in params]
    return SamplingRows(torch.stack([v.floats for v in values]).to(device),
                        torch.stack([v.top_k for v in values]).to(device),
                        any(p.top_k > 0 for p in params), any(p.top_p < 1 for p in params),
                        any(p.min_p > 0 for p in params))


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
