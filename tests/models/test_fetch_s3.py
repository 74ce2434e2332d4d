"""s3:// models fetched from a real S3-compatible server into the node-local cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from halyard_worker.model.cache import MANIFEST
from halyard_worker.model.fetch import resolve
from halyard_worker.model.source import parse_model_uri


def fetch_cmd(uri: str, cache, *extra) -> list[str]:
    return [sys.executable, "-m", "halyard_worker.cli", "fetch", "--model", uri, "--cache", str(cache), *extra]


def test_a_prefix_is_fetched_into_the_cache_and_served_from_it(tiny_model, s3, upload_dir, tmp_path):
    upload_dir("models", "tiny/v1", tiny_model)
    source = parse_model_uri("s3://models/tiny/v1")
    path = resolve(source, tmp_path, verify=True)
    assert path.parent == tmp_path and path.name == source.cache_key
    for file in tiny_model.iterdir():
        assert (path / file.name).read_bytes() == file.read_bytes()
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["uri"] == "s3://models/tiny/v1" and set(manifest["files"]) == {f.name for f in tiny_model.iterdir()}


def test_the_server_loads_what_fetch_cached_without_downloading_again(tiny_model, s3, upload_dir, tmp_path):
    from halyard_worker.server.config import ServerConfig
    from halyard_worker.server.runtime import local_model

    upload_dir("again", "tiny", tiny_model)
    fetched = resolve(parse_model_uri("s3://again/tiny"), tmp_path, verify=True)
    s3.delete_object(Bucket="again", Key="tiny/config.json")  # the store changes; the cache is what counts
    config = ServerConfig(model="s3://again/tiny", served_model_name="m", model_cache=str(tmp_path))
    assert local_model(config) == str(fetched)


def test_a_gguf_object_resolves_to_the_cached_file(s3, tmp_path):
    s3.create_bucket(Bucket="ggufs")
    s3.put_object(Bucket="ggufs", Key="q/m.gguf", Body=b"GGUF" + b"\0" * 60)
    path = resolve(parse_model_uri("s3://ggufs/q/m.gguf"), tmp_path)
    assert path.name == "m.gguf" and path.read_bytes().startswith(b"GGUF")


def test_an_empty_prefix_is_an_error_naming_the_uri(s3, tmp_path):
    s3.create_bucket(Bucket="empty")
    result = subprocess.run(fetch_cmd("s3://empty/nothing", tmp_path), capture_output=True, text=True,
                            env=os.environ)
    assert result.returncode == 1
    assert "s3://empty/nothing: no objects under this prefix" in result.stderr


def test_a_corrupted_entry_is_detected_by_checksum_and_fetched_again(tiny_model, s3, upload_dir, tmp_path):
    upload_dir("heal", "tiny", tiny_model)
    path = resolve(parse_model_uri("s3://heal/tiny"), tmp_path)
    weights = next(path.glob("*.safetensors"))
    good = weights.read_bytes()
    weights.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))  # same size, one byte flipped
    result = subprocess.run(fetch_cmd("s3://heal/tiny", tmp_path), capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert "sha256 differs from the manifest" in result.stderr
    assert weights.read_bytes() == good


def test_two_pods_on_a_node_download_once(tiny_model, s3, upload_dir, tmp_path):
    """Two fetch processes start together on one cache: one downloads, the other waits and hits."""
    upload_dir("shared", "tiny", tiny_model)
    results = [None, None]

    def run(i):
        results[i] = subprocess.run(fetch_cmd("s3://shared/tiny", tmp_path), capture_output=True, text=True,
                                    env=os.environ)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    logs = [r.stderr for r in results]
    assert sum("fetching s3://shared/tiny:" in log for log in logs) == 1, logs
    assert sum("cache hit: s3://shared/tiny" in log for log in logs) == 1, logs
    assert results[0].stdout == results[1].stdout  # the same local path on stdout


def test_progress_and_totals_are_logged(tiny_model, s3, upload_dir, tmp_path):
    upload_dir("progress", "tiny", tiny_model)
    result = subprocess.run(fetch_cmd("s3://progress/tiny", tmp_path), capture_output=True, text=True,
                            env=os.environ)
    assert result.returncode == 0, result.stderr
    files = len([p for p in tiny_model.iterdir() if p.is_file()])
    assert f"fetching s3://progress/tiny: {files} objects" in result.stderr
    assert "fetched s3://progress/tiny" in result.stderr


@pytest.mark.parametrize("argv,needle", [
    (["--model", "s3://bucket/x", "--revision", "v1"], "only to hf://"),
    (["--model", "ftp://x/y"], "unknown scheme"),
])
def test_fetch_refuses_bad_arguments_with_exit_2(argv, needle, tmp_path):
    result = subprocess.run([sys.executable, "-m", "halyard_worker.cli", "fetch", *argv, "--cache", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and needle in result.stderr
