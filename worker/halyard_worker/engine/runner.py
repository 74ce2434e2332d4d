"""The model runner: the only part of the engine that holds tensors.

It keeps a mirror of each scheduled request (tokens, block table, RNG),
turns a `SchedulerOutput` into one flat batch (decodes first, then prefill
chunks), runs the model over the paged KV cache, samples, and returns a
`RunnerOutput` of plain numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from halyard_worker.engine.sampler import SamplingRow, sample, sample_isolated
from halyard_worker.engine.scheduler import RunnerOutput, SchedulerOutput
from halyard_worker.engine.types import SamplingParams
from halyard_worker.model.llama import AttentionMetadata, LlamaModel, PrefillSpan


@dataclass
class RunnerRequest:
    """The runner's copy of a request. `token_ids` grows with its own samples."""

    token_ids: list[int]
    num_prompt_tokens: int
    block_ids: list[int]
    num_computed_tokens: int
    params: SamplingParams
    generator: torch.Generator | None = None
    block_table: torch.Tensor | None = field(default=None, repr=False)  # cached [MB] int64


def kv_bytes_per_block(model: LlamaModel, block_size: int, dtype: torch.dtype) -> int:
    c = model.config
    elem = torch.empty(0, dtype=dtype).element_size()
    return 2 * c.num_layers * block_size * c.num_kv_heads * c.head_dim * elem


class ModelRunner:
    def __init__(self, model: LlamaModel, num_blocks: int, block_size: int, dtype: torch.dtype,
                 device: str, seed: int = 0, eos_token_ids: tuple[int, ...] = ()):
        c = model.config
        self.model, self.block_size, self.device = model, block_size, torch.device(device)
        self.eos_token_ids = eos_token_ids
        # [layer, k/v, block, slot, kv head, dim]
        self.kv = torch.zeros(c.num_layers, 2, num_blocks, block_size, c.num_kv_heads, c.head_dim,
                              dtype=dtype, device=self.device)
        self.kv_caches = [(self.kv[i, 0], self.kv[i, 1]) for i in range(c.num_layers)]
        self.requests: dict[str, RunnerRequest] = {}
        self.generators: dict[str, torch.Generator | None] = {}  # built at intake, kept across preemption
        self.seed = seed
        self._counter = 0
        self._prompt_spans: list[tuple[str, int, int, int]] = []  # (rid, first row, position, rows)

    def add_request(self, request_id: str, params: SamplingParams) -> None:
        """Build the request's own torch state (its RNG) at intake, outside the
        shared step: a failure here fails this request alone."""
        self.generators[request_id] = self._generator(params)

    # -- request mirror ---------------------------------------------------
    def _update_states(self, out: SchedulerOutput) -> None:
        for rid in out.finished_request_ids:
            self.requests.pop(rid, None)
            self.generators.pop(rid, None)
        for new in out.new_requests:
            if new.request_id not in self.generators:  # added without add_request (tests)
                self.add_request(new.request_id, new.params)
            self.requests[new.request_id] = RunnerRequest(
                list(new.token_ids), new.num_prompt_tokens, list(new.block_ids),
                new.num_computed_tokens, new.params, generator=self.generators[new.request_id])
        for cached in out.cached_requests:
            req = self.requests[cached.request_id]
            req.num_computed_tokens = cached.num_computed_tokens
            if cached.new_block_ids:
                req.block_ids.extend(cached.new_block_ids)
                req.block_table = None

    def _generator(self, params: SamplingParams) -> torch.Generator | None:
        if params.greedy:
            return None
        self._counter += 1
        seed = params.seed if params.seed is not None else hash((self.seed, self._counter)) & 0x7FFFFFFF
        return torch.Generator(device=self.device).manual_seed(seed)

    def _block_table(self, req: RunnerRequest) -> torch.Tensor:
        if req.block_table is None:
            req.block_table = torch.tensor(req.block_ids, dtype=torch.long, device=self.device)
        return req.block_table

    # -- batch building -----------------------------------------------------
    def _prepare(self, out: SchedulerOutput):
        """Flat inputs for the step: decodes (1 token) first, then chunks."""
        # decodes first, shortest context first (the reference decode pads per group)
        order = sorted(out.num_scheduled_tokens.items(),
                       key=lambda kv: (kv[1] != 1, self.requests[kv[0]].num_computed_tokens))
        ids, pos, slots, sample_rows, sample_ids = [], [], [], [], []
        decodes, prefills, self._prompt_spans = [], [], []
        b = self.block_size
        for rid, n in order:
            req = self.requests[rid]
            start = req.num_computed_tokens
            q_start = len(ids)
            ids.extend(req.token_ids[start:start + n])
            positions = range(start, start + n)
            pos.extend(positions)
            slots.extend(req.block_ids[p // b] * b + p % b for p in positions)
            if n == 1:
                decodes.append(req)
            else:
                prefills.append(PrefillSpan(q_start, n, start + n, self._block_table(req)))
            if req.params.prompt_logprobs is not None and start + 1 < req.num_prompt_tokens:
                # rows predicting prompt tokens start+1 .. min(start+n, prompt)-1
                self._prompt_spans.append((rid, q_start, start, min(n, req.num_prompt_tokens - 1 - start)))
            if start + n == len(req.token_ids):
                sample_rows.append(len(ids) - 1)
                sample_ids.append(rid)
        meta = AttentionMetadata(
            slot_mapping=torch.tensor(slots, dtype=torch.long, device=self.device),
            num_decodes=len(decodes),
            decode_block_tables=self._decode_tables(decodes),
            decode_context_lens=torch.tensor([r.num_computed_tokens + 1 for r in decodes],
                                             dtype=torch.long, device=self.device) if decodes else None,
            prefills=tuple(prefills))
        input_ids = torch.tensor(ids, dtype=torch.long, device=self.device)
        positions = torch.tensor(pos, dtype=torch.long, device=self.device)
        return input_ids, positions, meta, sample_rows, sample_ids

    def _decode_tables(self, decodes: list[RunnerRequest]) -> torch.Tensor | None:
        if not decodes:
            return None
        width = max(len(r.block_ids) for r in decodes)
        rows = [r.block_ids + [0] * (width - len(r.block_ids)) for r in decodes]
        return torch.tensor(rows, dtype=torch.long, device=self.device)  # [D, MB]

    # -- step ---------------------------------------------------------------
    @torch.inference_mode()
    def execute(self, out: SchedulerOutput) -> RunnerOutput:
        self._update_states(out)
        if out.is_empty:
            return RunnerOutput({}, {})
        input_ids, positions, meta, sample_rows, sample_ids = self._prepare(out)
        hidden = self.model(input_ids, positions, self.kv_caches, meta)
        sampled, logprobs, failed = {}, {}, {}
        if sample_ids:
            rows_t = torch.tensor(sample_rows, dtype=torch.long, device=self.device)
            logits = self.model.compute_logits(hidden.index_select(0, rows_t))  # [S, V] float32
            rows = [self._sampling_row(self.requests[rid]) for rid in sample_ids]
            try:
                tokens, lps = sample(logits, rows)
            except Exception:  # find the request(s) at fault; the others still get their token
                tokens, lps, bad = sample_isolated(logits, rows)
                failed = {sample_ids[i]: message for i, message in bad.items()}
            for i, (rid, tok) in enumerate(zip(sample_ids, tokens)):
                if rid in failed:
                    continue
                sampled[rid] = tok
                self.requests[rid].token_ids.append(tok)
                if lps is not None and i in lps:
                    full, top = lps[i]
                    logprobs[rid] = (float(full[tok]), top)
        return RunnerOutput(sampled, logprobs, self._prompt_logprobs(hidden), failed)

    def _prompt_logprobs(self, hidden: torch.Tensor) -> dict:
        """(position, logprob of the prompt token there, top-N) for the prompt
        rows of requests that asked for prompt logprobs."""
        out = {}
        for rid, q_start, start, n in self._prompt_spans:
            req = self.requests[rid]
            logits = self.model.compute_logits(hidden[q_start:q_start + n])  # [n, V] float32
            lps = torch.log_softmax(logits, dim=-1)
            targets = torch.tensor(req.token_ids[start + 1:start + 1 + n], device=lps.device)
            chosen = lps.gather(1, targets[:, None])[:, 0].tolist()
            k = req.params.prompt_logprobs
            top_v, top_i = lps.topk(k, dim=-1) if k else (lps[:, :0], lps[:, :0].long())
            out[rid] = tuple(
                (start + 1 + j, chosen[j], tuple(zip(top_i[j].tolist(), top_v[j].tolist())))
                for j in range(n))
        return out

    def _sampling_row(self, req: RunnerRequest) -> SamplingRow:
        n = req.num_prompt_tokens
        return SamplingRow(req.params, req.token_ids[:n], req.token_ids[n:], req.generator,
                           self.eos_token_ids)
