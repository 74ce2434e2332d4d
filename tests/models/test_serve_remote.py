"""`halyard-worker serve --model s3://...` end to end: the server fetches the model into
`--model-cache` itself (no init container ran) and answers through the openai client."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_fetches_an_s3_model_and_answers(tiny_model, upload_dir, s3_env, tmp_path):
    openai = pytest.importorskip("openai")
    upload_dir("serve", "tiny", tiny_model)
    port, log = _port(), tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "halyard_worker.cli", "serve", "--model", "s3://serve/tiny",
           "--model-cache", str(tmp_path / "cache"), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert proc.poll() is None, log.read_text()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        assert client.models.list().data[0].id == "tiny"  # the default name: the prefix's last part
        out = client.completions.create(model="tiny", prompt="hello", max_tokens=4, temperature=0)
        assert out.usage.completion_tokens == 4
        assert "fetched s3://serve/tiny" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
