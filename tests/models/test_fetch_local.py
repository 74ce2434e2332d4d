"""Local model sources (directories, sharded safetensors, .gguf files) checked before loading."""
from __future__ import annotations

import json
import shutil

import pytest

from halyard_worker.model.fetch import ModelNotFound, resolve
from halyard_worker.model.source import parse_model_uri


def test_sharded_safetensors_with_an_index_load_like_the_single_file(tiny_model, tmp_path):
    from halyard_worker import LLM, SamplingParams
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_model).save_pretrained(sharded, max_shard_size="100KB")
    for f in tiny_model.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "generation")):
            shutil.copy(f, sharded / f.name)
    assert len(list(sharded.glob("*.safetensors"))) > 1 and (sharded / "model.safetensors.index.json").is_file()
    params = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
    expected = LLM(str(tiny_model)).generate(["hello world"], params)[0].token_ids
    assert LLM(f"file://{sharded}").generate(["hello world"], params)[0].token_ids == expected


def test_a_missing_shard_is_named(tiny_model, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    weights = next(model.glob("*.safetensors"))
    index = {"weight_map": {"a": weights.name, "b": "model-00002-of-00002.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelNotFound, match="model-00002-of-00002.safetensors"):
        resolve(parse_model_uri(str(model)))


@pytest.mark.parametrize("layout,needle", [
    ("missing", "does not exist"),
    ("no-config", "has no config.json"),
    ("no-weights", "has no \\*.safetensors"),
    ("not-gguf", "not a GGUF model"),
])
def test_what_is_not_a_model_is_refused_naming_the_path(layout, needle, tiny_model, tmp_path):
    target = tmp_path / layout
    if layout == "no-config":
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"")
    elif layout == "no-weights":
        target.mkdir()
        shutil.copy(tiny_model / "config.json", target)
    elif layout == "not-gguf":
        target = tmp_path / "x.gguf"
        target.write_bytes(b"PK\3\4 not gguf")
    with pytest.raises(ModelNotFound, match=needle) as info:
        resolve(parse_model_uri(f"file://{target}"))
    assert str(target) in str(info.value)


def test_a_gguf_file_and_a_directory_holding_one_resolve_to_the_file(tmp_path):
    gguf = tmp_path / "d" / "m.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF\3\0\0\0")
    assert resolve(parse_model_uri(str(gguf))) == gguf
    assert resolve(parse_model_uri(f"file://{gguf.parent}")) == gguf


def test_serve_refuses_a_missing_local_model_before_starting(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "halyard_worker.cli", "serve", "--model",
                             str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "--model" in result.stderr
