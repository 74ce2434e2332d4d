"""AutoAWQ GEMM checkpoints built locally from a float model directory.

`build_awq_checkpoint(src, dst, group_size)` quantizes every decoder linear
to 4 bits with AutoAWQ's zero-point rounding (per group of `group_size`
input channels: scale = (max - min) / 15, zero = -round(min / scale)) and
writes it in AutoAWQ's GEMM layout (`WQLinear_GEMM.from_linear`): `qweight`
int32 [in, out/8] and `qzeros` int32 [in/group, out/8], eight 4-bit values
per int32 in the order 0 2 4 6 1 3 5 7, `scales` float16 [in/group, out],
plus `quantization_config` in config.json. `dequantized_state()` returns the
float weights the checkpoint represents, for reference models.
(Activation-aware scale search is not needed to test the format.)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

AWQ_PACK_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _quantize(w, group_size: int):
    """w [out, in] -> (q int32 [out, in], zeros int32 [out, in/g], scales fp16 [out, in/g])."""
    import torch

    out, cols = w.shape
    g = w.float().reshape(out, cols // group_size, group_size)
    lo, hi = g.amin(-1), g.amax(-1)
    scales = ((hi - lo).clamp(min=1e-5) / 15).half()
    zeros = (-torch.round(lo / scales.float())).clamp(0, 15)
    q = (torch.round(g / scales.float()[..., None]) + zeros[..., None]).clamp(0, 15)
    return q.reshape(out, cols).int(), zeros.int(), scales


def _pack(values):
    """int32 [rows, cols] of 4-bit values -> int32 [rows, cols/8] (AutoAWQ order)."""
    import torch

    rows, cols = values.shape
    packed = torch.zeros(rows, cols // 8, dtype=torch.int32)
    for i, col in enumerate(AWQ_PACK_ORDER):
        packed |= values[:, col::8] << (4 * i)
    return packed


def _is_linear(name: str) -> bool:
    return name.endswith(".weight") and name.split(".")[-2] in LINEARS


def build_awq_checkpoint(src: str | Path, dst: str | Path, group_size: int = 32) -> Path:
    """Write the AWQ version of the float checkpoint `src` to `dst`."""
    from safetensors.torch import load_file, save_file

    src, dst = Path(src), Path(dst)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    state = {}
    for file in sorted(src.glob("*.safetensors")):
        state.update(load_file(str(file)))
        (dst / file.name).unlink()
    out = {}
    for name, tensor in state.items():
        if not _is_linear(name):
            out[name] = tensor
            continue
        q, zeros, scales = _quantize(tensor, group_size)
        base = name[:-len(".weight")]
        out[f"{base}.qweight"] = _pack(q.T.contiguous())
        out[f"{base}.qzeros"] = _pack(zeros.T.contiguous())
        out[f"{base}.scales"] = scales.T.contiguous()
    save_file(out, str(dst / "model.safetensors"))
    config = json.loads((dst / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": group_size,
                                     "zero_point": True, "version": "gemm"}
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


def dequantized_state(src: str | Path, group_size: int = 32) -> dict:
    """The float32 state dict an AWQ checkpoint of `src` represents: (q - zero) * scale."""
    from safetensors.torch import load_file

    state = {}
    for file in sorted(Path(src).glob("*.safetensors")):
        state.update(load_file(str(file)))
    for name, tensor in state.items():
        if _is_linear(name):
            q, zeros, scales = _quantize(tensor, group_size)
            out, cols = q.shape
            deq = (q.reshape(out, -1, group_size) - zeros[..., None]).float() * scales.float()[..., None]
            state[name] = deq.reshape(out, cols)
    return state
