"""hf:// models through huggingface_hub, served offline from a pre-populated hub cache
(HF_HUB_OFFLINE=1: what a pod without egress does), revisions honoured, blobs verified."""
from __future__ import annotations

import hashlib
import os

import pytest

from halyard_worker.model.fetch import resolve
from halyard_worker.model.hub import HubFetchError
from halyard_worker.model.source import parse_model_uri


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def populate(hub, repo: str, refs: dict[str, str], snapshots: dict[str, dict[str, bytes]]) -> None:
    """Write huggingface_hub's cache layout: blobs named by content hash, snapshots of symlinks, refs."""
    root = hub / f"models--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for commit, files in snapshots.items():
        for name, data in files.items():
            blob = hashlib.sha256(data).hexdigest() if name.endswith((".safetensors", ".gguf")) else _git_sha1(data)
            (root / "blobs" / blob).write_bytes(data)
            link = root / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(root / "blobs" / blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    for ref, commit in refs.items():
        (root / "refs" / ref).write_text(commit)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def model_files(tiny_model) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in tiny_model.iterdir() if p.is_file()}


def test_revision_selects_the_snapshot(tiny_model, tmp_path, offline):
    main, v1 = "a" * 40, "b" * 40
    files = model_files(tiny_model)
    older = {**files, "config.json": files["config.json"].replace(b"{", b'{"_v": 1, ', 1)}
    populate(tmp_path / "hf", "org/tiny", {"main": main, "v1": v1}, {main: files, v1: older})
    assert resolve(parse_model_uri("hf://org/tiny"), tmp_path).name == main
    assert resolve(parse_model_uri("hf://org/tiny", "v1"), tmp_path).name == v1
    assert resolve(parse_model_uri("hf://org/tiny@v1"), tmp_path, verify=True).name == v1


def test_a_gguf_file_of_a_repo(tmp_path, offline):
    commit = "c" * 40
    populate(tmp_path / "hf", "org/q", {"main": commit}, {commit: {"m.Q4_1.gguf": b"GGUF" + b"\1" * 32}})
    path = resolve(parse_model_uri("hf://org/q/m.Q4_1.gguf"), tmp_path, verify=True)
    assert path.name == "m.Q4_1.gguf" and path.read_bytes().startswith(b"GGUF")


def test_an_unknown_revision_offline_is_an_error_naming_uri_and_revision(tiny_model, tmp_path, offline):
    commit = "d" * 40
    populate(tmp_path / "hf", "org/tiny", {"main": commit}, {commit: model_files(tiny_model)})
    with pytest.raises(HubFetchError, match=r"hf://org/tiny \(revision v9\)"):
        resolve(parse_model_uri("hf://org/tiny", "v9"), tmp_path)


def test_a_corrupt_blob_fails_verification(tiny_model, tmp_path, offline):
    commit = "e" * 40
    populate(tmp_path / "hf", "org/tiny", {"main": commit}, {commit: model_files(tiny_model)})
    weights = next((tmp_path / "hf").rglob("snapshots/*/*.safetensors")).resolve()
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(HubFetchError, match="sha256 differs"):
        resolve(parse_model_uri("hf://org/tiny"), tmp_path, verify=True)


def test_the_engine_serves_an_hf_model_from_the_cache(tiny_model, tmp_path, offline):
    from halyard_worker import LLM, SamplingParams

    commit = "f" * 40
    populate(tmp_path / "hf", "org/tiny", {"main": commit}, {commit: model_files(tiny_model)})
    path = resolve(parse_model_uri("hf://org/tiny"), tmp_path)
    params = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)
    assert (LLM(str(path)).generate(["hi there"], params)[0].token_ids
            == LLM(str(tiny_model)).generate(["hi there"], params)[0].token_ids)
