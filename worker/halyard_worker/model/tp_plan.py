"""How one model splits over tensor-parallel ranks (pure: no torch).

Rank r of N holds:
- attention: query heads [r * H/N, (r + 1) * H/N); KV heads
  [r * Hkv/N, (r + 1) * Hkv/N) when N divides Hkv, else (N a multiple of
  Hkv: fewer KV heads than ranks) the one KV head its query heads read,
  replicated on N/Hkv ranks;
- MLP: intermediate rows [r * I/N, (r + 1) * I/N) of gate and up (columns
  of down);
- vocabulary: rows [r * Vp/N, (r + 1) * Vp/N) of the embedding and lm_head,
  Vp = V rounded up to a multiple of N (rows past V are zero padding).

Column-parallel linears (q/k/v, gate/up) take their output rows; row-parallel
ones (o_proj, down_proj) take their input columns and are summed over ranks
by one all-reduce each (`model/tp_comm.py`); their bias is added once (rank 0).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from halyard_worker.model.config import ModelConfig

FLAG = "--tensor-parallel-size (spec.resources.gpus)"


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_tensor_parallel(config: ModelConfig, size: int) -> None:
    """Raise ValueError naming the flag when `size` cannot split this model."""
    h, hkv = config.num_heads, config.num_kv_heads
    fits = [d for d in divisors(h) if hkv % d == 0 or d % hkv == 0]
    if size < 1 or size not in fits:
        raise ValueError(f"{FLAG} is {size}, which does not divide the model's {h} attention heads "
                         f"({hkv} KV heads); use one of {', '.join(map(str, fits))}")
    if config.intermediate_size % size:
        raise ValueError(f"{FLAG} is {size}, which does not divide the model's MLP width "
                         f"{config.intermediate_size}; use one of "
                         f"{', '.join(str(d) for d in fits if config.intermediate_size % d == 0)}")


@dataclass(frozen=True)
class ShardPlan:
    """Rank `rank` of `size` for the model `config` (a validated split)."""

    config: ModelConfig
    rank: int = 0
    size: int = 1

    def __post_init__(self):
        check_tensor_parallel(self.config, self.size)
        if not 0 <= self.rank < self.size:
            raise ValueError(f"rank {self.rank} is outside 0..{self.size - 1}")

    @property
    def sharded(self) -> bool:
        return self.size > 1

    @property
    def num_heads(self) -> int:
        return self.config.num_heads // self.size

    @property
    def num_kv_heads(self) -> int:
        return max(1, self.config.num_kv_heads // self.size)

    def q_heads(self) -> tuple[int, int]:
        return self.rank * self.num_heads, (self.rank + 1) * self.num_heads

    def kv_heads(self) -> tuple[int, int]:
        if self.config.num_kv_heads >= self.size:
            return self.rank * self.num_kv_heads, (self.rank + 1) * self.num_kv_heads
        first = self.q_heads()[0] // (self.config.num_heads // self.config.num_kv_heads)
        return first, first + 1

    def intermediate(self) -> tuple[int, int]:
        n = self.config.intermediate_size // self.size
        return self.rank * n, (self.rank + 1) * n

    @property
    def vocab_per_rank(self) -> int:
        return -(-self.config.vocab_size // self.size)

    def vocab(self) -> tuple[int, int]:
        """[start, stop) of this rank's vocabulary rows, stop <= V (the rest is padding)."""
        start = self.rank * self.vocab_per_rank
        return min(start, self.config.vocab_size), min(start + self.vocab_per_rank, self.config.vocab_size)

    def rows(self, part: str) -> tuple[int, int]:
        """Output rows of a column-parallel part (q_proj, k_proj, v_proj, gate_proj, up_proj)."""
        dh = self.config.head_dim
        if part.endswith("q_proj"):
            a, b = self.q_heads()
            return a * dh, b * dh
        if part.endswith(("k_proj", "v_proj")):
            a, b = self.kv_heads()
            return a * dh, b * dh
        if part.endswith(("gate_proj", "up_proj")):
            return self.intermediate()
        raise KeyError(f"{part} is not a column-parallel linear")

    def cols(self, name: str) -> tuple[int, int]:
        """Input columns of a row-parallel linear (o_proj, down_proj)."""
        if "o_proj" in name:
            a, b = self.q_heads()
            return a * self.config.head_dim, b * self.config.head_dim
        if "down_proj" in name:
            return self.intermediate()
        raise KeyError(f"{name} is not a row-parallel linear")

    def local_config(self) -> ModelConfig:
        """The shapes this rank's model is built with (vocab stays the full one)."""
        return replace(self.config, num_heads=self.num_heads, num_kv_heads=self.num_kv_heads,
                       intermediate_size=self.config.intermediate_size // self.size)


ROW_PARALLEL = ("self_attn.o_proj", "mlp.down_proj")
COLUMN_PARALLEL = {"self_attn.qkv_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                   "mlp.gate_up_proj": ("mlp.gate_proj", "mlp.up_proj")}
