"""Quantize while loading: at every layer boundary the live tensors are at
most the finished (quantized) model plus one layer in the checkpoint's dtype."""
from __future__ import annotations

import gc
import warnings

import pytest
import torch

from halyard_worker.model.build import build_model
from halyard_worker.model.loader import open_source
from halyard_worker.model.weights import weight_nbytes


def _objects():
    with warnings.catch_warnings():  # isinstance on some torch module objects warns
        warnings.simplefilter("ignore")
        return [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]


def live_tensor_bytes(exclude: set[int]) -> int:
    """Bytes of every distinct tensor storage alive in this process (not meta, not `exclude`)."""
    seen, total = set(), 0
    for obj in _objects():
        try:
            if not isinstance(obj, torch.Tensor) or obj.is_meta:
                continue
            storage = obj.untyped_storage()
        except Exception:  # objects that fail isinstance/attribute checks
            continue
        ptr = storage.data_ptr()
        if ptr and ptr not in seen and ptr not in exclude:
            seen.add(ptr)
            total += storage.nbytes()
    return total


def storage_ptrs() -> set[int]:
    out = set()
    for obj in _objects():
        try:
            if isinstance(obj, torch.Tensor) and not obj.is_meta:
                out.add(obj.untyped_storage().data_ptr())
        except Exception:
            continue
    return out


class Probe:
    """Wraps a checkpoint source; samples live tensor bytes around each layer read."""

    def __init__(self, source):
        self.source, self.config = source, source.config
        self.before = storage_ptrs()
        self.peak, self.largest_layer = 0, 0

    def sample(self):
        gc.collect()
        self.peak = max(self.peak, live_tensor_bytes(self.before))

    def global_weights(self):
        return self.source.global_weights()

    def layer_weights(self, i):
        self.sample()  # the previous layer's source tensors must be gone by now
        weights = self.source.layer_weights(i)
        self.largest_layer = max(self.largest_layer, sum(weight_nbytes(w) for w in weights.values()))
        self.sample()
        return weights


def model_bytes(model) -> int:
    tensors = list(model.parameters()) + list(model.buffers())
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


@pytest.mark.parametrize("mode", ["int8", "int4", "int4-awq"])
def test_peak_is_quantized_model_plus_one_source_layer(tiny_model_factory, mode):
    path = tiny_model_factory(num_layers=6, hidden_size=128, intermediate_size=256)
    probe = Probe(open_source(path))
    calibration = [[1, 5, 9, 20, 33, 7, 8, 100]] if mode == "int4-awq" else None
    model = build_model(probe, torch.float32, "cpu", 64, mode, calibration)
    final = model_bytes(model)
    assert probe.peak <= final + probe.largest_layer
    # and quantizing did shrink the model below its float size
    float_model = build_model(open_source(path), torch.float32, "cpu", 64, None)
    assert final < model_bytes(float_model)


class Hoarding:
    """A source that keeps everything it read, as a whole-state-dict loader does."""

    def __init__(self, source):
        self.source, self.config, self.kept = source, source.config, []

    def global_weights(self):
        return self.source.global_weights()

    def layer_weights(self, i):
        self.kept.append(self.source.layer_weights(i))
        return self.kept[-1]


def test_the_probe_catches_a_loader_that_holds_the_whole_checkpoint(tiny_model_factory):
    path = tiny_model_factory(num_layers=6, hidden_size=128, intermediate_size=256)
    probe = Probe(Hoarding(open_source(path)))
    model = build_model(probe, torch.float32, "cpu", 64, "int8")
    assert probe.peak > model_bytes(model) + probe.largest_layer
