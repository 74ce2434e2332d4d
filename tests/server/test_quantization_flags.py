"""`--quantization int4-awq` and `--calibration-text FILE` reach the engine;
a .gguf file is a model."""
from __future__ import annotations

import argparse

import pytest

from halyard_worker.server.config import add_serve_arguments, config_from_args
from halyard_worker.server.runtime import engine_config


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_calibration_text_is_split_into_samples(tmp_path, tiny_model):
    text = tmp_path / "calib.txt"
    paragraphs = [f"Paragraph {i}: " + "words " * 100 for i in range(12)]
    text.write_text("\n\n".join(paragraphs))
    config = _parse("--model", str(tiny_model), "--quantization", "int4-awq", "--calibration-text", str(text))
    assert config.quantization == "int4-awq"
    assert len(config.calibration) >= 2 and all(len(c) >= 2000 for c in config.calibration[:-1])
    assert "".join(config.calibration).count("Paragraph") == 12
    engine = engine_config(config)
    assert engine.quantization == "int4-awq" and engine.quantization_calibration == config.calibration


def test_missing_calibration_file_names_the_flag(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="--calibration-text"):
        _parse("--model", str(tiny_model), "--calibration-text", str(tmp_path / "nope.txt"))


def test_gguf_file_is_a_model(smollm2_gguf):
    assert _parse("--model", str(smollm2_gguf)).model == str(smollm2_gguf)

