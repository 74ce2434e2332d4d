"""A `.gguf` file as a checkpoint: config from its metadata, weights one layer
at a time straight from the memory-mapped file (no transformers round trip).

Tensor types: F32/F16/BF16 as they are; Q4_0/Q4_1 as Halyard int4 (group 32,
`model/gguf_blocks.py`); Q8_0 as float values q * d, which the int8 path
re-scales per output row (Halyard's int8 has one scale per row, the file one
per 32 values); every other type (K-quants, ...) dequantized by the `gguf`
package with a log line. llama.cpp stores Llama q/k rows permuted for its
interleaved RoPE; they are permuted back here.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from halyard_worker.model import gguf_blocks
from halyard_worker.model.config import ModelConfig, RopeConfig
from halyard_worker.model.tp_plan import ROW_PARALLEL
from halyard_worker.model.weights import Weight, concat_rows

log = logging.getLogger(__name__)

VOCABULARY_FIELDS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
                     "tokenizer.ggml.scores")  # large arrays the tokenizer loader reads itself
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
GLOBAL_NAMES = {"token_embd.weight": "embed_tokens.weight", "output_norm.weight": "norm.weight",
                "output.weight": "lm_head.weight"}
LAYER_NAMES = {"attn_norm.weight": "input_layernorm.weight",
               "ffn_norm.weight": "post_attention_layernorm.weight",
               "attn_output.weight": "self_attn.o_proj.weight", "attn_output.bias": "self_attn.o_proj.bias",
               "ffn_down.weight": "mlp.down_proj.weight", "ffn_down.bias": "mlp.down_proj.bias"}
MERGED = {"self_attn.qkv_proj": ("attn_q", "attn_k", "attn_v"), "mlp.gate_up_proj": ("ffn_gate", "ffn_up")}
HALYARD_PARTS = {"attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "ffn_gate": "gate_proj",
                 "ffn_up": "up_proj"}


class GGUFSource:
    """`config`, `global_weights()`, `layer_weights(i)` (Halyard names)."""

    def __init__(self, path: Path):
        import gguf

        self.path = Path(path)
        self._gguf = gguf
        self.reader = gguf.GGUFReader(str(self.path))
        self.meta = {f.name: f.contents() for f in self.reader.fields.values()
                     if f.name not in VOCABULARY_FIELDS}
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.config = gguf_config(self.meta, self.tensors, self._vocab_size())
        self._permute = self.meta["general.architecture"] == "llama"
        self._logged: set[str] = set()

    def _vocab_size(self) -> int:
        field = self.reader.fields.get("tokenizer.ggml.tokens")
        return len(field.data) if field is not None else 0

    def global_weights(self) -> dict[str, Weight]:
        return {ours: self.read(name) for name, ours in GLOBAL_NAMES.items() if name in self.tensors}

    def layer_weights(self, i: int, plan=None, whole: tuple[str, ...] = ()) -> dict[str, Weight]:
        """Layer i. With a sharded `plan`, only the rank's rows of q/k/v and
        gate/up are decoded, and only its columns of o_proj/down_proj where the
        format allows it (float, or Q4_0/Q4_1/Q8_0 cut at block boundaries);
        anything else comes whole and `tp_shard` cuts it."""
        prefix, out = f"blk.{i}.", {}
        cut = plan is not None and plan.sharded
        for name, ours in LAYER_NAMES.items():
            if prefix + name in self.tensors:
                module = ours.rsplit(".", 1)[0]
                row_parallel = cut and module in ROW_PARALLEL and module not in whole and ours.endswith(".weight")
                cols = plan.cols(module) if row_parallel else None
                out[ours] = self.read(prefix + name, cols=cols)
        c = self.config
        heads = {"attn_q": c.num_heads, "attn_k": c.num_kv_heads}
        for ours, parts in MERGED.items():
            for kind in ("weight", "bias"):
                names = [f"{prefix}{p}.{kind}" for p in parts]
                if all(n in self.tensors for n in names):
                    out[f"{ours}.{kind}"] = concat_rows([self._part(n, p, heads, plan if cut else None)
                                                         for n, p in zip(names, parts)])
        return out

    def _part(self, name: str, part: str, heads: dict, plan) -> Weight:
        """One column-parallel part (its rows of the rank's heads / MLP rows under a plan)."""
        rows = plan.rows(HALYARD_PARTS[part]) if plan is not None else None
        n = heads.get(part) if self._permute else None
        if n and rows:
            n = (rows[1] - rows[0]) // self.config.head_dim  # whole heads: the permutation stays inside each
        return self.read(name, n, rows=rows)

    def read(self, name: str, heads: int | None = None, rows=None, cols=None) -> Weight:
        """One tensor as [rows, cols] (or [n]) in Halyard's orientation, or only
        its rows / columns [a, b); `heads`: undo llama.cpp's q/k row permutation
        for that many heads."""
        t = self.tensors[name]
        kind = self._gguf.GGMLQuantizationType(int(t.tensor_type))
        shape = [int(n) for n in reversed(t.shape)]  # GGUF lists the innermost dim first
        data = t.data
        if rows is not None:
            data, shape = data[rows[0]:rows[1]], [rows[1] - rows[0], *shape[1:]]
        if cols is not None:
            span = self._column_bytes(kind, cols)
            if span is None:  # not cuttable in the file's layout: decode, then cut
                from halyard_worker.model.tp_shard import slice_cols

                return slice_cols(self._decode(t, kind, shape, data), *cols)
            data, shape = data[:, span[0]:span[1]], [shape[0], cols[1] - cols[0]]
        weight = self._decode(t, kind, shape, data)
        return _unpermute(weight, heads) if heads else weight

    def _column_bytes(self, kind, cols) -> tuple[int, int] | None:
        """Byte range of columns [a, b) in each row of a 2-D tensor, or None."""
        Q = self._gguf.GGMLQuantizationType
        if kind in (Q.F32, Q.F16):
            return cols
        block_bytes = {Q.Q4_0: 18, Q.Q4_1: 20, Q.Q8_0: 34}.get(kind)
        if block_bytes is None or cols[0] % gguf_blocks.BLOCK or cols[1] % gguf_blocks.BLOCK:
            return None
        return cols[0] // gguf_blocks.BLOCK * block_bytes, cols[1] // gguf_blocks.BLOCK * block_bytes

    def _decode(self, t, kind, shape: list[int], data) -> Weight:
        Q = self._gguf.GGMLQuantizationType
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        if kind in (Q.F32, Q.F16):
            return torch.from_numpy(np.array(data).reshape(shape))
        if kind == Q.BF16:
            raw = np.array(data).view(np.int16).reshape(shape)
            return torch.from_numpy(raw).view(torch.bfloat16)
        if kind == Q.Q4_0:
            return gguf_blocks.q4_0(data, rows)
        if kind == Q.Q4_1:
            return gguf_blocks.q4_1(data, rows)
        if kind == Q.Q8_0:
            return gguf_blocks.q8_0_values(data, rows).reshape(shape)
        if kind.name not in self._logged:
            self._logged.add(kind.name)
            log.info("GGUF %s: tensors of type %s (e.g. %s) have no Halyard layout; dequantizing them to "
                     "float32", self.path.name, kind.name, t.name)
        from gguf.quants import dequantize

        return torch.from_numpy(np.ascontiguousarray(dequantize(np.ascontiguousarray(data), kind))).reshape(shape)


def _unpermute(weight: Weight, heads: int) -> Weight:
    """Rows of each head go from llama.cpp's (pair, 2) order back to (2, pair)."""
    rows = weight.shape[0]
    index = torch.arange(rows).reshape(heads, rows // heads // 2, 2).transpose(1, 2).reshape(-1)
    if isinstance(weight, torch.Tensor):
        return weight[index]
    from dataclasses import replace

    return replace(weight, qweight=weight.qweight[index], scales=weight.scales[index],
                   zeros=None if weight.zeros is None else weight.zeros[index])


def gguf_config(meta: dict, tensors: dict, vocab_size: int) -> ModelConfig:
    """ModelConfig from GGUF metadata (`<arch>.block_count`, ...)."""
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ValueError(f"GGUF general.architecture {arch!r} is not supported; supported: "
                         f"{', '.join(ARCHITECTURES)}")
    scaling = meta.get(f"{arch}.rope.scaling.type", "none")
    if scaling not in ("none", "linear") or "rope_freqs.weight" in tensors or (
            scaling == "linear" and meta.get(f"{arch}.rope.scaling.factor", 1.0) != 1.0):
        raise ValueError(f"GGUF rope scaling {scaling!r} (or rope_freqs) is not supported")

    def get(key, default=None):
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ValueError(f"GGUF metadata lacks {arch}.{key}")
        return value

    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    eos = meta.get("tokenizer.ggml.eos_token_id")
    return ModelConfig(
        architecture=ARCHITECTURES[arch],
        vocab_size=int(meta.get(f"{arch}.vocab_size", vocab_size) or tensors["token_embd.weight"].shape[1]),
        hidden_size=hidden,
        intermediate_size=int(get("feed_forward_length")),
        num_layers=int(get("block_count")),
        num_heads=heads,
        num_kv_heads=int(get("attention.head_count_kv", heads)),
        head_dim=int(get("attention.key_length", hidden // heads)),
        max_position_embeddings=int(get("context_length", 2048)),
        rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        rope=RopeConfig(theta=float(get("rope.freq_base", 10000.0))),
        tie_word_embeddings="output.weight" not in tensors,
        qkv_bias="blk.0.attn_q.bias" in tensors,
        o_bias="blk.0.attn_output.bias" in tensors,
        mlp_bias="blk.0.ffn_down.bias" in tensors,
        torch_dtype="float32",
        eos_token_ids=(int(eos),) if eos is not None else (),
        sliding_window=None,
    )
