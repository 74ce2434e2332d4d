"""`halyard bench serve` on the real SmolLM2-135M-Instruct (bench marker: run explicitly,
`pytest -m bench tests/server/test_bench_real_model.py -s`). The figures are reported,
never asserted; what is asserted is that every request of the workload was served."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from server_helpers import free_port

pytestmark = pytest.mark.bench
NAME = "smollm2"


def _serve(model, log):
    port = free_port()
    cmd = [sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(model), "--served-model-name", NAME,
           "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32",
           "--max-num-seqs", "8", "--max-model-len", "1024"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()}")


def test_bench_serve_on_smollm2(smollm2_hf_dir, tmp_path, capsys):
    from halyard.cli.main import main

    proc, url = _serve(smollm2_hf_dir, tmp_path / "server.log")
    try:
        out = tmp_path / "result.json"
        rc = main(["bench", "serve", "--base-url", url, "--model", NAME, "--endpoint", "chat",
                   "--dataset", "sharegpt", "--max-input-len", "256", "--max-output-len", "64",
                   "--num-prompts", "16", "--request-rate", "2", "--max-concurrency", "8", "--seed", "0",
                   "--label", "SmolLM2-135M-Instruct float32, CPU", "--result-json", str(out)])
    finally:
        proc.terminate()
        proc.wait(60)
    summary = json.loads(out.read_text())["summary"]
    assert rc == 0 and (summary["completed"], summary["failed"]) == (16, 0)
    print(capsys.readouterr().out)
