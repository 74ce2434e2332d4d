"""Build `LlamaModel` from a checkpoint source one layer at a time.

The model starts on the meta device. Globals (embeddings, final norm,
lm_head) are placed first, then each decoder layer: its weights are read in
the checkpoint's dtype, quantized (or kept in the checkpoint's own quantized
layout) and moved to the device before the next layer is read, so peak memory
is the finished part of the model plus one layer in the source dtype.

A source has `config` (ModelConfig), `global_weights()` and
`layer_weights(i, plan=None, whole=())`, both `{halyard name: torch.Tensor |
QuantizedWeight}`; given a `ShardPlan` a source may read only the rank's
slices (names in `whole` it reads whole); `tp_shard` cuts whatever comes whole.

Tensor parallel (`plan`, `comm`): each rank builds its own slices. A float
row-parallel weight (o_proj, down_proj) that is to be quantized is read whole
and quantized before it is cut, so its per-row int8 scales (and int4 groups)
are those of the unsharded model and every rank computes exactly its part of
the TP=1 layer.

Rules for each linear weight:
- quantization None: float in the model dtype (quantized ones dequantized);
- a `QuantizedWeight` in the file and a quantization mode: kept as it is
  (the file's own values: GGUF Q4_0/Q4_1, AWQ -> int4);
- a float weight and a mode: quantized to that mode, int4 in groups of
  `group_size` input weights ("int4-awq": int4 with activation-aware scales,
  clipping and error-compensated rounding from the calibration prompts, run
  layer by layer: each layer calibrates on the outputs of the layers before
  it as quantized; `model/awq.py`).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from halyard_worker.model import quant
from halyard_worker.model.llama import LlamaModel, rope_cache
from halyard_worker.model.tp_plan import ROW_PARALLEL
from halyard_worker.model.tp_shard import shard_layer, shard_vocab
from halyard_worker.model.weights import QuantizedWeight, as_float
from halyard_worker.options import INT4_GROUP_SIZES, one_of

log = logging.getLogger(__name__)

MODES = (None, "int8", "int4", "int4-awq")


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t, requires_grad=False)


def place_globals(model: LlamaModel, weights: dict, dtype, device) -> None:
    _require(weights, ["embed_tokens.weight", "norm.weight"], "the model")
    if model.plan is not None:
        weights = {n: shard_vocab(as_float(w, dtype), model.plan) if "norm" not in n else w
                   for n, w in weights.items()}
    model.embed_tokens.weight = _param(as_float(weights.pop("embed_tokens.weight"), dtype).to(device))
    model.norm.weight = _param(as_float(weights.pop("norm.weight"), dtype).to(device))
    if model.config.tie_word_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    else:
        if "lm_head.weight" not in weights:
            raise ValueError("checkpoint lacks lm_head.weight and does not tie word embeddings")
        model.lm_head.weight = _param(as_float(weights.pop("lm_head.weight"), dtype).to(device))


def quantized_module(w: QuantizedWeight, input_scale, bias, dtype, device) -> nn.Module:
    out, cols = w.shape
    if w.mode == "int8":
        new = quant.Int8Linear(cols, out, bias is not None, dtype)
    else:
        new = quant.Int4Linear(cols, out, bias is not None, w.group_size, dtype)
        new.zeros = w.zeros.to(device=device, dtype=dtype)
    new.qweight = w.qweight.to(device)
    new.scales = w.scales.to(device=device, dtype=dtype)
    if input_scale is not None:
        new.input_scale = input_scale.to(device=device, dtype=dtype)
    if bias is not None:
        new.bias = _param(bias.to(device=device, dtype=dtype))
    return new


def quantize_weight(mode: str, w: torch.Tensor, x: torch.Tensor | None,
                    group_size: int = quant.INT4_GROUP_SIZE):
    """Float w [out, in] -> (QuantizedWeight, input_scale or None); x: calibration inputs."""
    from halyard_worker.model.awq import quantize_calibrated

    bits = "int8" if mode == "int8" else "int4"  # int4-awq is int4 with calibration
    g = quant.int4_group_size(w.shape[1], group_size)
    if x is not None:
        entry, input_scale = quantize_calibrated(bits, w, x, g)
    else:
        entry, input_scale = quant._quantize_weight(bits, w, g), None
    return QuantizedWeight(bits, entry["qweight"], entry["scales"], entry.get("zeros"), g), input_scale


def _linears(layer: nn.Module) -> list[str]:
    return [n for n, m in layer.named_modules() if isinstance(m, nn.Linear)]


def _require(weights: dict, names: list[str], where: str) -> None:
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"checkpoint lacks weights of {where}: {', '.join(missing[:5])}")


def place_layer(layer: nn.Module, weights: dict, dtype, device, mode: str | None,
                inputs: dict[str, torch.Tensor] | None = None, where: str = "a layer",
                group_size: int = quant.INT4_GROUP_SIZE) -> None:
    """Put one decoder layer's weights in place (quantizing its linears)."""
    _require(weights, [n for n, _ in layer.named_parameters()], where)
    for name, module in list(layer.named_modules()):
        if not isinstance(module, nn.Linear):
            for pname, _ in list(module.named_parameters(recurse=False)):
                module.register_parameter(pname, _param(as_float(weights[f"{name}.{pname}"], dtype).to(device)))
            continue
        w, bias = weights[f"{name}.weight"], weights.get(f"{name}.bias")
        if mode is None:
            module.weight = _param(as_float(w, dtype).to(device))
            if bias is not None:
                module.bias = _param(bias.to(device=device, dtype=dtype))
            continue
        scale = None
        if not isinstance(w, QuantizedWeight):
            w, scale = quantize_weight(mode, w.float(), inputs.get(name) if inputs else None, group_size)
        parent, _, child = name.rpartition(".")
        setattr(layer.get_submodule(parent), child, quantized_module(w, scale, bias, dtype, device))


def _check_modes(quantization, calibration, plan, group_size) -> None:
    if quantization not in MODES:
        raise ValueError(f"quantization must be one of none, int8, int4, int4-awq; got {quantization!r}")
    if group_size not in INT4_GROUP_SIZES:
        raise ValueError(f"quantization group size must be one of {one_of(tuple(map(str, INT4_GROUP_SIZES)))}; "
                         f"got {group_size!r}")
    if quantization == "int4-awq" and not calibration:
        raise ValueError("quantization int4-awq needs calibration text (quantization_calibration)")
    if plan is not None and plan.sharded and calibration:
        raise ValueError("activation-aware calibration (int4-awq, --calibration-text) is not supported "
                         "with --tensor-parallel-size > 1; use int8 or int4 without calibration text")


def build_model(source, dtype: torch.dtype, device: str, max_positions: int,
                quantization: str | None = None, calibration: list[list[int]] | None = None,
                plan=None, comm=None, group_size: int = quant.INT4_GROUP_SIZE) -> LlamaModel:
    _check_modes(quantization, calibration, plan, group_size)
    plan = plan if plan is not None and plan.sharded else None
    config = plan.local_config() if plan else source.config
    with torch.device("meta"):
        model = LlamaModel(config, max_positions, plan, comm if plan else None)
    place_globals(model, source.global_weights(), dtype, device)
    model.rope_cos, model.rope_sin = (t.to(device) for t in rope_cache(config.rope, config.head_dim, max_positions))
    calib = None
    if quantization and calibration:
        from halyard_worker.model.calibrate import LayerCalibration

        # calibration prompts are cut to the positions the model is built for
        calib = LayerCalibration(model, [ids[:max_positions] for ids in calibration])
    for i, layer in enumerate(model.layers):
        weights = _layer_weights(source, i, plan, quantization)
        inputs = calib.capture(layer, weights, dtype, device) if calib else None
        place_layer(layer, weights, dtype, device, quantization, inputs, where=f"layer {i}", group_size=group_size)
        if calib:
            calib.advance(layer)
        del weights, inputs
    if calib:
        calib.close()
    return model.eval().requires_grad_(False)


def _layer_weights(source, i: int, plan, mode: str | None) -> dict:
    """Layer i's weights for this rank (all of them without a plan)."""
    if plan is None:
        return source.layer_weights(i)
    weights = source.layer_weights(i, plan, whole=ROW_PARALLEL if mode else ())
    return shard_layer(weights, plan, (lambda w: quantize_weight(mode, w.float(), None)[0]) if mode else None)
