"""Tensor-parallel collectives and the vocab-parallel layers (torch.distributed).

`TPComm` is one rank's handle on its group: gloo on CPU, NCCL on GPUs. Per
decoder layer the model makes exactly two collectives (the all-reduces after
o_proj and down_proj); the embedding makes one all-reduce and the lm_head one
all-gather.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F


class TPComm:
    """Rank `rank` of `size` in the process group `group` (a `ProcessGroupGloo`
    or `ProcessGroupNCCL` of its own, not torch's global default group, so one
    process may hold several engines one after another)."""

    def __init__(self, rank: int, size: int, group, device: torch.device):
        self.rank, self.size, self.group, self.device = rank, size, group, device

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, in place."""
        self.group.allreduce([x]).wait()
        return x

    def all_gather_last(self, x: torch.Tensor) -> torch.Tensor:
        """[..., n] on each rank -> [..., size * n], rank order."""
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(self.size)]
        self.group.allgather([parts], [x]).wait()
        return torch.cat(parts, dim=-1)

    def min_int(self, value: int) -> int:
        """The smallest `value` over ranks (e.g. KV blocks every rank can hold)."""
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        opts = dist.AllreduceOptions()
        opts.reduceOp = dist.ReduceOp.MIN
        self.group.allreduce([t], opts).wait()
        return int(t.item())


class VocabParallelEmbedding(nn.Module):
    """Rows [start, start + rows) of the vocabulary; other ids embed to zero here
    and the all-reduce adds the rank that holds them (exact: one non-zero term)."""

    def __init__(self, rows: int, dim: int, start: int, comm: TPComm):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, dim), requires_grad=False)  # [V/N, hidden]
        self.start, self.comm = start, comm

    def forward(self, ids):
        local = ids - self.start
        outside = (local < 0) | (local >= self.weight.shape[0])
        x = F.embedding(local.clamp(0, self.weight.shape[0] - 1), self.weight)  # [T, hidden]
        x = x.masked_fill(outside[:, None], 0)
        return self.comm.all_reduce(x)


class ParallelLMHead(nn.Module):
    """Logits for this rank's vocabulary rows, gathered to the full vocabulary."""

    def __init__(self, dim: int, rows: int, vocab_size: int, comm: TPComm):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, dim), requires_grad=False)  # [V/N, hidden]
        self.vocab_size, self.comm = vocab_size, comm

    def forward(self, hidden):
        local = F.linear(hidden, self.weight)  # [S, V/N]
        return self.comm.all_gather_last(local)[:, :self.vocab_size]  # [S, V]
