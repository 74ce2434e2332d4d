"""Parameter validation and model loading errors."""
from __future__ import annotations

import json
import shutil

import pytest

from halyard_worker.engine.types import EngineConfig, InvalidParameter, SamplingParams


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.5), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5),
    ("top_k", -2), ("min_p", 2.0), ("max_tokens", 0), ("min_tokens", -1),
    ("repetition_penalty", 0.0), ("presence_penalty", 3.0), ("frequency_penalty", -2.5),
    ("seed", "x"), ("stop", [""]), ("stop_token_ids", [-1]), ("logprobs", 21), ("max_tokens", True),
])
def test_bad_sampling_params_name_the_field(field, value):
    with pytest.raises(InvalidParameter) as err:
        SamplingParams(**{field: value})
    assert err.value.param == field and field in str(err.value)
    assert isinstance(err.value, ValueError)


def test_min_tokens_above_max_tokens_is_rejected():
    with pytest.raises(InvalidParameter, match="min_tokens"):
        SamplingParams(max_tokens=2, min_tokens=3)


def test_stop_accepts_a_single_string():
    assert SamplingParams(stop="###").stop == ("###",)


def test_engine_config_rejects_bad_fields():
    with pytest.raises(InvalidParameter) as err:
        EngineConfig(model="/x", quantization="int3")
    assert err.value.param == "quantization"
    with pytest.raises(InvalidParameter) as err:
        EngineConfig(model="/x", dtype="float8")
    assert err.value.param == "dtype"


def test_kernels_choice_is_validated(tiny_model):
    from halyard_worker import LLM

    with pytest.raises(InvalidParameter) as err:
        EngineConfig(model="/x", kernels="triton")
    assert err.value.param == "kernels"
    with pytest.raises(InvalidParameter) as err:
        LLM(str(tiny_model), kernels="cupy")  # no GPU here
    assert err.value.param == "kernels"
    llm = LLM(str(tiny_model), kernels="torch")
    assert llm.generate("Hello", SamplingParams(max_tokens=2, min_tokens=2))[0].token_ids


def test_missing_model_directory_is_named():
    from halyard_worker import LLM

    with pytest.raises(FileNotFoundError, match="/no/such/model"):
        LLM("/no/such/model")


def test_file_uri_loads(tiny_model):
    from halyard_worker import LLM

    llm = LLM(f"file://{tiny_model}")
    assert llm.generate("Hello", SamplingParams(max_tokens=2, min_tokens=2))[0].token_ids


def test_missing_weights_and_unsupported_architecture(tiny_model, tmp_path):
    from halyard_worker import LLM

    broken = tmp_path / "noweights"
    shutil.copytree(tiny_model, broken)
    for f in broken.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="safetensors"):
        LLM(str(broken))
    other = tmp_path / "gpt2"
    shutil.copytree(tiny_model, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["architectures"] = ["GPT2LMHeadModel"]
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="GPT2LMHeadModel"):
        LLM(str(other))


def test_missing_tokenizer_is_named(tiny_model, tmp_path):
    from halyard_worker import LLM

    bare = tmp_path / "notokenizer"
    bare.mkdir()
    for f in tiny_model.iterdir():
        if f.name in ("config.json",) or f.suffix == ".safetensors":
            shutil.copy(f, bare / f.name)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        LLM(str(bare))


def test_hf_uri_without_network_fails_clearly(monkeypatch):
    from halyard_worker.model.loader import resolve_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="hf://no-org/no-repo"):
        resolve_model_path("hf://no-org/no-repo")


def test_max_model_len_above_model_limit_is_rejected(tiny_model):
    from halyard_worker import LLM

    with pytest.raises(InvalidParameter) as err:
        LLM(str(tiny_model), max_model_len=100000)
    assert err.value.param == "max_model_len"
