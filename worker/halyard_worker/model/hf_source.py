"""A Hugging Face directory as a checkpoint: single or sharded safetensors,
read one layer at a time (memory-mapped), q/k/v and gate/up merged.

AutoAWQ GEMM checkpoints (`quantization_config.quant_method: awq`,
`version: gemm`) are recognised: `qweight` int32 [in, out/8], `qzeros`
int32 [in/group, out/8] (eight 4-bit values per int32, in AWQ's interleaved
order 0 2 4 6 1 3 5 7) and `scales` [in/group, out], w = (q - zero) * scale,
are unpacked into Halyard's int4 layout with the same values.

With a `ShardPlan` (tensor parallel) a float layer is read as the rank's
slices only (`safe_open(...).get_slice`): rows of q/k/v and gate/up, columns
of o_proj and down_proj; AWQ tensors are read whole and cut by `tp_shard`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from halyard_worker.model.config import ModelConfig
from halyard_worker.model.weights import QuantizedWeight, Weight, concat_rows

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble i of an int32 holds column AWQ_ORDER[i] of its 8
MERGED = {"self_attn.qkv_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
          "mlp.gate_up_proj": ("mlp.gate_proj", "mlp.up_proj")}
SINGLE = ("self_attn.o_proj", "mlp.down_proj")
NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")


def awq_settings(raw_config: dict) -> int | None:
    """The AWQ group size when config.json declares an AutoAWQ GEMM checkpoint;
    a clear error for AWQ variants Halyard cannot serve; None otherwise."""
    q = raw_config.get("quantization_config")
    if not q:
        return None
    method = q.get("quant_method")
    if method != "awq":
        raise ValueError(f"config.json quantization_config.quant_method {method!r} is not supported "
                         "(supported: awq with version gemm; or a float checkpoint)")
    bits, version = q.get("bits", q.get("w_bit")), str(q.get("version", "gemm")).lower()
    if bits != 4 or version != "gemm" or not q.get("zero_point", True):
        raise ValueError(f"config.json quantization_config: AWQ bits={bits} version={version!r} "
                         f"zero_point={q.get('zero_point', True)} is not supported (needs 4-bit GEMM with zero points)")
    return int(q.get("group_size", q.get("q_group_size", 128)))


def unpack_awq(qweight: torch.Tensor, qzeros: torch.Tensor, scales: torch.Tensor,
               group_size: int) -> QuantizedWeight:
    """AutoAWQ GEMM tensors -> Halyard int4 (same q, zero and scale values)."""
    def unpack(packed: torch.Tensor) -> torch.Tensor:  # int32 [r, c/8] -> uint8 [r, c]
        shifts = torch.arange(0, 32, 4, dtype=torch.int32)
        nib = (packed[:, :, None] >> shifts) & 0xF  # [r, c/8, 8], nibble i = column AWQ_ORDER[i]
        cols = torch.empty_like(nib)
        cols[:, :, list(AWQ_ORDER)] = nib
        return cols.reshape(packed.shape[0], -1).to(torch.uint8)

    q = unpack(qweight).T.contiguous()  # [out, in]
    zeros = unpack(qzeros).T.float().contiguous()  # [out, in/group]
    packed = q[:, 0::2] | (q[:, 1::2] << 4)
    return QuantizedWeight("int4", packed, scales.T.float().contiguous(), zeros, group_size)


class HFSource:
    """`config`, `global_weights()`, `layer_weights(i)` (Halyard names)."""

    def __init__(self, path: Path, config: ModelConfig, raw_config: dict):
        from safetensors import safe_open

        self.path, self.config = Path(path), config
        self.awq_group = awq_settings(raw_config)
        files = sorted(self.path.glob("*.safetensors"))
        self._files = {f: safe_open(str(f), framework="pt") for f in files}
        self._where = {name: f for f, h in self._files.items() for name in h.keys()}

    def _get(self, name: str, rows=None, cols=None) -> torch.Tensor | None:
        """A tensor, or only its rows [a, b) / columns [a, b) (read as that slice)."""
        f = self._where.get(name) or self._where.get(f"model.{name}")
        if f is None:
            return None
        key = name if name in self._where else f"model.{name}"
        if rows is None and cols is None:
            return self._files[f].get_tensor(key)
        part = self._files[f].get_slice(key)
        if rows is not None:
            return part[rows[0]:rows[1]]
        return part[:, cols[0]:cols[1]] if len(part.get_shape()) == 2 else part[:]

    def global_weights(self) -> dict[str, Weight]:
        out = {n: self._get(n) for n in ("embed_tokens.weight", "norm.weight", "lm_head.weight")}
        return {n: t for n, t in out.items() if t is not None}

    def _linear(self, name: str, kind: str, rows=None, cols=None) -> Weight | None:
        if kind == "weight" and self.awq_group and self._get(f"{name}.qweight") is not None:
            return unpack_awq(self._get(f"{name}.qweight"), self._get(f"{name}.qzeros"),
                              self._get(f"{name}.scales"), self.awq_group)
        if kind == "bias" and cols is not None:
            return self._get(f"{name}.{kind}")  # a row-parallel bias is whole (added once)
        return self._get(f"{name}.{kind}", rows, cols)

    def layer_weights(self, i: int, plan=None, whole: tuple[str, ...] = ()) -> dict[str, Weight]:
        """Layer i; with a sharded `plan`, only that rank's slices (names in `whole` whole)."""
        p, out = f"layers.{i}.", {}
        cut = plan is not None and plan.sharded and not self.awq_group
        for n in NORMS:
            out[n] = self._get(p + n)
        for kind in ("weight", "bias"):
            for ours, parts in MERGED.items():
                found = [self._linear(p + part, kind, plan.rows(part) if cut else None) for part in parts]
                if all(t is not None for t in found):
                    out[f"{ours}.{kind}"] = concat_rows(found)
            for name in SINGLE:
                t = self._linear(p + name, kind, cols=plan.cols(name) if cut and name not in whole else None)
                if t is not None:
                    out[f"{name}.{kind}"] = t
        return {n: t for n, t in out.items() if t is not None}
