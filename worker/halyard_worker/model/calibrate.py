"""Collect the inputs of every quantizable linear on a few calibration prompts."""
from __future__ import annotations

import torch

from halyard_worker.model.llama import AttentionMetadata, LlamaModel
from halyard_worker.model.prefill import PrefillBatch

MAX_ROWS = 16384  # calibration rows kept per linear (the search works on their second moment)


@torch.inference_mode()
def run_prefill(model: LlamaModel, token_ids: list[int], block_size: int = 16) -> torch.Tensor:
    """One sequence through the model on a scratch paged KV cache -> hidden [T, hidden]."""
    c = model.config
    device = model.embed_tokens.weight.device
    dtype = model.embed_tokens.weight.dtype
    t = len(token_ids)
    n_blocks = -(-t // block_size)
    kv = torch.zeros(c.num_layers, 2, n_blocks, block_size, c.num_kv_heads, c.head_dim, dtype=dtype, device=device)
    table = torch.arange(n_blocks, device=device)
    meta = AttentionMetadata(
        slot_mapping=torch.arange(t, device=device), num_decodes=0, decode_block_tables=None,
        decode_context_lens=None, prefill=PrefillBatch.single(t, table))
    ids = torch.tensor(token_ids, device=device)
    return model(ids, torch.arange(t, device=device), [(kv[i, 0], kv[i, 1]) for i in range(c.num_layers)], meta)


def capture_linear_inputs(model: LlamaModel, calibration: list[list[int]]) -> dict[str, torch.Tensor]:
    """{linear name: inputs [N, in_features] float32} over the calibration prompts."""
    from halyard_worker.model.quant import quantizable_linears

    seen: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, lin in quantizable_linears(model).items():
        def hook(_module, args, _out, name=name):
            seen.setdefault(name, []).append(args[0].detach().float().reshape(-1, args[0].shape[-1]))
        hooks.append(lin.register_forward_hook(hook))
    try:
        for ids in calibration:
            run_prefill(model, ids)
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.cat(xs)[:MAX_ROWS] for name, xs in seen.items()}


class LayerCalibration:
    """Calibration activations carried through the model one layer at a time
    (for quantize-while-loading): `capture(layer, weights, ...)` places the
    layer in float and records each linear's inputs for the calibration
    hidden states; once the layer is quantized, `advance(layer)` runs them
    through it, so the next layer calibrates on the inputs the quantized
    model gives it (sequential calibration, as GPTQ's)."""

    def __init__(self, model: LlamaModel, calibration: list[list[int]]):
        self.model = model
        device = model.embed_tokens.weight.device
        with torch.inference_mode():
            self.hidden = [model.embed_tokens(torch.tensor(ids, device=device)) for ids in calibration]

    @torch.inference_mode()
    def capture(self, layer, weights: dict, dtype, device) -> dict[str, torch.Tensor]:
        from halyard_worker.model.build import place_layer

        place_layer(layer, weights, dtype, device, None)
        seen: dict[str, list[torch.Tensor]] = {}
        hooks = []
        for name, lin in layer.named_modules():
            if isinstance(lin, torch.nn.Linear):
                def hook(_module, args, _out, name=name):
                    seen.setdefault(name, []).append(args[0].detach().float().reshape(-1, args[0].shape[-1]))
                hooks.append(lin.register_forward_hook(hook))
        try:
            for x in self.hidden:
                self._forward(layer, x)
        finally:
            for h in hooks:
                h.remove()
        return {name: torch.cat(xs)[:MAX_ROWS] for name, xs in seen.items()}

    @torch.inference_mode()
    def advance(self, layer) -> None:
        """The calibration hidden states through `layer` as it is now placed."""
        self.hidden = [self._forward(layer, x) for x in self.hidden]

    def _forward(self, layer, x: torch.Tensor, block_size: int = 16) -> torch.Tensor:
        c, t, device = self.model.config, x.shape[0], x.device
        n_blocks = -(-t // block_size)
        kv = torch.zeros(2, n_blocks, block_size, c.num_kv_heads, c.head_dim, dtype=x.dtype, device=device)
        meta = AttentionMetadata(
            slot_mapping=torch.arange(t, device=device), num_decodes=0, decode_block_tables=None,
            decode_context_lens=None, prefill=PrefillBatch.single(t, torch.arange(n_blocks, device=device)))
        out, residual = layer(x, None, self.model.rope_cos[:t], self.model.rope_sin[:t], (kv[0], kv[1]), meta)
        return out + residual  # the layer's full hidden state (its residual add is fused into the next norm)

    def close(self) -> None:
        self.hidden = []
