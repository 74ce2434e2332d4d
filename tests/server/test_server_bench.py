"""`halyard bench serve` against a live worker and the transformers baseline server."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from server_helpers import MODEL, free_port

pytestmark = pytest.mark.slow


def _bench(url, tmp_path, *extra):
    from halyard.cli.main import main

    out, png = tmp_path / "result.json", tmp_path / "plot.png"
    rc = main(["bench", "serve", "--base-url", url, "--model", MODEL, "--dataset", "fixed",
               "--input-len", "8", "--output-len", "6", "--num-prompts", "6", "--request-rate", "20",
               "--seed", "1", "--goodput", "ttft:60000", "tpot:60000",
               "--result-json", str(out), "--plot", str(png), *extra])
    return rc, json.loads(out.read_text()), png


def test_bench_serve_reports_against_the_worker(server, tmp_path, capsys):
    rc, result, png = _bench(server.url, tmp_path, "--max-concurrency", "4")
    summary = result["summary"]
    assert rc == 0
    assert (summary["completed"], summary["failed"]) == (6, 0)
    assert summary["total_output_tokens"] == 36  # from the server's usage
    assert summary["goodput"] == pytest.approx(summary["request_throughput"])
    assert summary["ttft"]["median_ms"] > 0 and summary["itl"]["mean_ms"] > 0
    assert png.stat().st_size > 1000
    assert "Output token throughput" in capsys.readouterr().out


def test_bench_serve_chat_endpoint(server, tmp_path):
    rc, result, _ = _bench(server.url, tmp_path, "--endpoint", "chat")
    assert rc == 0 and result["summary"]["total_output_tokens"] == 36


def test_bench_serve_counts_failures(server, tmp_path):
    from halyard.cli.main import main

    out = tmp_path / "r.json"
    rc = main(["bench", "serve", "--base-url", server.url, "--model", "no-such-model", "--dataset",
               "fixed", "--num-prompts", "2", "--input-len", "4", "--output-len", "2",
               "--ready-timeout", "0", "--result-json", str(out)])
    summary = json.loads(out.read_text())["summary"]
    assert rc == 1 and summary["failed"] == 2 and "404" in summary["errors"][0]


def test_bench_serve_gives_up_on_a_server_that_never_answers(tmp_path, capsys):
    from halyard.cli.main import main

    rc = main(["bench", "serve", "--base-url", f"http://127.0.0.1:{free_port()}", "--model", MODEL,
               "--num-prompts", "2", "--ready-timeout", "1"])
    assert rc == 1
    assert "not ready" in capsys.readouterr().err


def test_hf_baseline_server_answers_the_same_benchmark(tiny_model, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "halyard.bench.hf_baseline_server",
                             "--model", str(tiny_model), "--served-model-name", MODEL,
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        rc, result, _ = _bench(url, tmp_path)
        assert rc == 0 and result["summary"]["completed"] == 6
        assert result["summary"]["total_output_tokens"] == 36
    finally:
        proc.terminate()
        proc.wait(30)
