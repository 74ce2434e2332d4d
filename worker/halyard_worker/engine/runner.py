"""The model runner: the only part of the engine that holds tensors.

It keeps a persistent batch (`InputBatch`: one host row per request, updated
from the scheduler's diffs), gathers a step's flat inputs from it with
vectorized indexing (decodes first, shortest context first, then prefill
chunks), sends them to the device in one copy, runs the model over the paged
KV cache, samples, and returns a `RunnerOutput` of plain numbers. The one
host sync per step is reading the sampled token ids back.

Tensor parallel (`engine/tp_ranks.py`): rank 0's runner has a `link` and
sends each step to the other ranks before running it; their runners run it
through `follow` and take the sampled tokens from rank 0 instead of sampling.
"""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.engine.graph_plan import replayable
from halyard_worker.engine.input_batch import InputBatch
from halyard_worker.engine.sampler import SamplingRow, sample, sample_isolated
from halyard_worker.engine.sampling_table import (
    SamplingRows, SamplingTable, SamplingValues, TokenHistory, sampling_values,
)
from halyard_worker.engine.scheduler import RunnerOutput, SchedulerOutput
from halyard_worker.engine.step_inputs import StepPlan, plan_step
from halyard_worker.engine.types import SamplingParams
from halyard_worker.model.llama import AttentionMetadata, LlamaModel
from halyard_worker.model.prefill import PrefillBatch


def kv_bytes_per_block(model: LlamaModel, block_size: int, dtype: torch.dtype) -> int:
    c = model.config
    elem = torch.empty(0, dtype=dtype).element_size()
    return 2 * c.num_layers * block_size * c.num_kv_heads * c.head_dim * elem


def needs_full_sampler(params: SamplingParams) -> bool:
    """Anything but plain greedy argmax (random draws, penalties, min_tokens, logprobs)."""
    return (not params.greedy or params.logprobs is not None or params.min_tokens > 0
            or params.repetition_penalty != 1.0 or params.presence_penalty != 0
            or params.frequency_penalty != 0 or bool(params.logit_bias))


class ModelRunner:
    def __init__(self, model: LlamaModel, num_blocks: int, block_size: int, dtype: torch.dtype,
                 device: str, seed: int = 0, eos_token_ids: tuple[int, ...] = (),
                 max_model_len: int | None = None, max_num_seqs: int = 64, link=None, leader: bool = True):
        c = model.config  # this rank's heads under tensor parallelism
        self.model, self.block_size, self.device = model, block_size, torch.device(device)
        self.eos_token_ids = eos_token_ids
        # [layer, k/v, block, slot, kv head, dim]
        self.kv = torch.zeros(c.num_layers, 2, num_blocks, block_size, c.num_kv_heads, c.head_dim,
                              dtype=dtype, device=self.device)
        self.kv_caches = [(self.kv[i, 0], self.kv[i, 1]) for i in range(c.num_layers)]
        max_len = max_model_len or model.rope_cos.shape[0]
        self.batch = InputBatch(max_num_seqs, max_len, block_size, pin=self.device.type == "cuda")
        self.sampling = SamplingTable(max_num_seqs, self.device, pin=self.device.type == "cuda")
        self.values: dict[str, SamplingValues] = {}  # each request's sampling-table row (and seed), from intake
        self.seed = seed
        self._counter = 0
        self.graphs = None  # a GraphRunner once `capture_graphs` ran
        self.link, self.leader = link, leader  # rank 0 sends steps over `link`; followers do not sample
        self._sampled: dict[str, int] = {}  # tokens of the last step, for the followers' batches

    def close(self) -> None:
        """Stop the other tensor-parallel ranks (none without tensor parallelism)."""
        if self.link is not None:
            self.link.close()

    def add_request(self, request_id: str, params: SamplingParams) -> None:
        """Build the request's own tensors (parameters, draw seed) at intake,
        outside the shared step: a failure here fails this request alone."""
        self.values[request_id] = sampling_values(params, self._seed(params))

    def capture_graphs(self, plan) -> None:
        """Capture decode graphs for `plan`'s buckets (GPU, graph-safe ops only)."""
        from halyard_worker.engine.graph_runner import GraphRunner

        self.graphs = GraphRunner(self.model, self.kv_caches, plan, self.device)
        self.graphs.capture()

    # -- persistent batch -------------------------------------------------
    def _update_states(self, out: SchedulerOutput) -> None:
        batch = self.batch
        for rid in out.finished_request_ids:
            if rid in batch.row_of:
                self.sampling.clear(batch.row_of[rid])
            batch.remove(rid)
            self.values.pop(rid, None)
        for new in out.new_requests:
            if new.request_id not in self.values:  # added without add_request (tests)
                self.add_request(new.request_id, new.params)
            batch.add(new.request_id, new.token_ids, new.num_prompt_tokens, new.block_ids,
                      new.num_computed_tokens, new.params, needs_full_sampler(new.params))
            self.sampling.ensure(batch.capacity)
            self.sampling.set(batch.row_of[new.request_id], self.values[new.request_id])
        cached = out.cached_requests
        if cached.request_ids:
            batch.num_computed[batch.rows_of(cached.request_ids)] = cached.num_computed_tokens
        for rid, block_ids in cached.new_block_ids.items():
            batch.append_blocks(rid, block_ids)

    def _seed(self, params: SamplingParams) -> int:
        """The request's draw seed: its own, else one from the engine seed and an intake counter."""
        if params.greedy:
            return 0
        self._counter += 1
        return params.seed if params.seed is not None else hash((self.seed, self._counter)) & 0x7FFFFFFF

    # -- batch building -----------------------------------------------------
    def _to_device(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(arr)
        return t if self.device.type == "cpu" else t.to(self.device, non_blocking=True)

    def _metadata(self, plan: StepPlan, flat: torch.Tensor) -> AttentionMetadata:
        """flat: [3, T] (token ids, positions, slots) on the device."""
        tables = lens = None
        if plan.num_decodes:
            tables = self._to_device(plan.decode_tables)  # [D, W]
            lens = self._to_device(plan.decode_lens)  # [D]
        prefill = None
        if plan.prefills:
            q_lens = [p[1] for p in plan.prefills]
            ctx_lens = [p[2] for p in plan.prefills]
            prefill = PrefillBatch.build(plan.num_decodes, q_lens, ctx_lens, plan.prefill_tables, self._to_device)
        return AttentionMetadata(slot_mapping=flat[2], num_decodes=plan.num_decodes,
                                 decode_block_tables=tables, decode_context_lens=lens, prefill=prefill)

    # -- step ---------------------------------------------------------------
    @torch.inference_mode()
    def follow(self, sampled: dict[str, int], out: SchedulerOutput) -> None:
        """A follower rank: take rank 0's tokens of the last step, run this one."""
        if sampled:
            rids = list(sampled)
            self.batch.append_tokens(self.batch.rows_of(rids), np.asarray([sampled[r] for r in rids], np.int64))
        self.execute(out)

    @torch.inference_mode()
    def execute(self, out: SchedulerOutput) -> RunnerOutput:
        if self.link is not None:
            self.link.send((self._sampled, out))
            self._sampled = {}
        self._update_states(out)
        if out.is_empty:
            return RunnerOutput({}, {})
        plan = plan_step(self.batch, out.num_scheduled_tokens)
        flat = self._to_device(plan.flat)  # [3, T]: token ids, positions, slots
        meta = self._metadata(plan, flat)
        rows = self._to_device(plan.sample_rows)
        graph_plan = self.graphs.plan if self.graphs is not None else None
        if replayable(flat.shape[1], plan.num_decodes, len(plan.prefills), graph_plan) is not None:
            logits = self.graphs.run(flat, meta.decode_block_tables, meta.decode_context_lens)
            if not len(plan.sample_rows):
                return RunnerOutput({}, {})
            return self._sample(plan, logits.index_select(0, rows))  # [S, V] float32
        hidden = self.model(flat[0], flat[1], self.kv_caches, meta)
        prompt_lps = self._prompt_logprobs(plan, hidden)
        if not len(plan.sample_rows):
            return RunnerOutput({}, {}, prompt_lps)
        logits = self.model.compute_logits(hidden.index_select(0, rows))
        if not self.leader:
            return RunnerOutput({}, {})
        result = self._sample(plan, logits)  # [S, V] float32 -> tokens
        if self.link is not None:
            self._sampled = result.sampled
        return RunnerOutput(result.sampled, result.logprobs, prompt_lps, result.failed) if prompt_lps else result

    def _prompt_logprobs(self, plan: StepPlan, hidden: torch.Tensor) -> dict:
        """(position, logprob of the prompt token there, top-N) for the prompt
        rows of prefill chunks whose requests asked for prompt logprobs."""
        out = {}
        batch = self.batch
        for q_start, n_rows, ctx, row, _ in plan.prefills:
            rid = batch.rid[row]
            info = batch.info[rid]
            k = info.params.prompt_logprobs
            start = ctx - n_rows
            if k is None or start + 1 >= info.num_prompt_tokens:
                continue
            n = min(n_rows, info.num_prompt_tokens - 1 - start)  # rows predicting prompt tokens
            lps = torch.log_softmax(self.model.compute_logits(hidden[q_start:q_start + n]), dim=-1)
            targets = torch.from_numpy(batch.token_ids[row, start + 1:start + 1 + n].copy()).to(lps.device)
            chosen = lps.gather(1, targets[:, None])[:, 0].tolist()
            top_v, top_i = lps.topk(k, dim=-1) if k else (lps[:, :0], lps[:, :0].long())
            out[rid] = tuple((start + 1 + j, chosen[j], tuple(zip(top_i[j].tolist(), top_v[j].tolist())))
                             for j in range(n))
        return out

    def _sample(self, plan: StepPlan, logits: torch.Tensor) -> RunnerOutput:
        batch = self.batch
        rids = batch.rid[plan.sample_batch_rows].tolist()
        lps, failed = None, {}
        if batch.special[plan.sample_batch_rows].any():
            rows = [self._sampling_row(r) for r in rids]
            table = self._sampling_rows(plan.sample_batch_rows)
            try:
                tokens, lps = sample(logits, rows, table)
            except Exception:  # find the request(s) at fault; the others still get their token
                tokens, lps, bad = sample_isolated(logits, rows, table)
                failed = {rids[i]: message for i, message in bad.items()}
        else:
            tokens = logits.argmax(dim=-1).tolist()  # the step's one host sync
        keep = [i for i, r in enumerate(rids) if r not in failed]
        if len(keep) < len(rids):
            batch.append_tokens(plan.sample_batch_rows[keep], np.asarray([tokens[i] for i in keep], dtype=np.int64))
        else:
            batch.append_tokens(plan.sample_batch_rows, np.asarray(tokens, dtype=np.int64))
        logprobs = {}
        if lps:
            for i in keep:
                if i in lps:
                    full, top = lps[i]
                    logprobs[rids[i]] = (float(full[tokens[i]]), top)
        sampled = {rids[i]: tokens[i] for i in keep}
        return RunnerOutput(sampled, logprobs, {}, failed)

    def _sampling_rows(self, batch_rows: np.ndarray) -> SamplingRows:
        """The sampled rows' device parameters, draw offsets (outputs so far) and
        the penalty rows' token histories, gathered from the persistent batch."""
        batch = self.batch
        offsets = batch.num_tokens[batch_rows] - batch.num_prompt[batch_rows]
        history = None
        pen = np.nonzero(self.sampling.penalized(batch_rows))[0]
        if len(pen):
            ids, num_prompt, num_tokens = batch.histories(batch_rows[pen])
            history = TokenHistory(self._to_device(pen), pen, self._to_device(ids), self._to_device(num_prompt),
                                   self._to_device(num_tokens))
        return self.sampling.rows(batch_rows, self._to_device(batch_rows), self._to_device(offsets), history)

    def _sampling_row(self, request_id: str) -> SamplingRow:
        """What the per-row masks read (the table carries seeds and histories)."""
        info = self.batch.info[request_id]
        n_out = int(self.batch.num_tokens[info.row]) - info.num_prompt_tokens
        return SamplingRow(info.params, (), (), None, self.eos_token_ids, n_out)
