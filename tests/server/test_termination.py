"""The worker's fatal error lands in the termination message file the kubelet reads."""
from __future__ import annotations

from halyard_worker import cli
from halyard_worker.termination import ENV, write_termination_message


def test_a_model_that_cannot_be_found_is_the_termination_message(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv(ENV, str(path))
    assert cli.main(["serve", "--model", str(tmp_path / "gone")]) == 2
    message = path.read_text()
    assert message.startswith(f"ModelLoadFailed: --model '{tmp_path / 'gone'}'") and "does not exist" in message


def test_a_model_the_init_container_cannot_fetch_is_the_termination_message(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv(ENV, str(path))
    assert cli.main(["fetch", "--model", "ftp://nowhere/m", "--cache", str(tmp_path / "cache")]) == 2
    assert path.read_text().startswith("ModelLoadFailed: 'ftp://nowhere/m'"), path.read_text()


def test_rejected_arguments_are_the_termination_message(tmp_path, monkeypatch):
    path = tmp_path / "termination-log"
    monkeypatch.setenv(ENV, str(path))
    (tmp_path / "config.json").write_text("{}")  # a model directory, as far as the flag check goes
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert cli.main(["serve", "--model", str(tmp_path), "--chat-template", str(tmp_path / "none.jinja")]) == 2
    assert path.read_text().startswith("InvalidArguments: "), path.read_text()


def test_without_a_pod_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert write_termination_message("WorkerError", "x" * 10_000).startswith("WorkerError: x")
    assert list(tmp_path.iterdir()) == []


def test_long_messages_are_cut_to_what_the_kubelet_keeps(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "t"))
    write_termination_message("ModelLoadFailed", "é" * 5000)
    assert len((tmp_path / "t").read_bytes()) <= 4096


def test_usage_errors_are_the_termination_message(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setenv(ENV, str(tmp_path / "t"))
    with pytest.raises(SystemExit):
        cli.main(["serve", "--model", str(tmp_path), "--halyard-no-such-flag"])
    assert (tmp_path / "t").read_text() == "InvalidArguments: unrecognized arguments: --halyard-no-such-flag"
