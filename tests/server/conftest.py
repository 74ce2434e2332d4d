"""Live `halyard-worker serve` processes on free localhost ports (real engine, tiny model)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest

from server_helpers import MODEL, free_port

STARTUP_TIMEOUT = 180.0


@dataclass
class LiveServer:
    """A running worker process; `url` is its root, `log` its combined output file."""

    proc: subprocess.Popen
    url: str
    log: str

    def output(self) -> str:
        with open(self.log) as fh:
            return fh.read()

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_server(model_dir, log_path, *flags: str) -> LiveServer:
    port = free_port()
    cmd = [sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(model_dir),
           "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
           "--device", "cpu", *flags]
    log = open(log_path, "w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = LiveServer(proc, f"http://127.0.0.1:{port}", str(log_path))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop(5)
    raise RuntimeError(f"server not ready in {STARTUP_TIMEOUT}s:\n{server.output()}")


@pytest.fixture(scope="module")
def server_factory(tiny_model, tmp_path_factory):
    """start(*flags) -> LiveServer; every server is stopped (SIGTERM) at module end."""
    started: list[LiveServer] = []

    def start(*flags: str, model=None) -> LiveServer:
        log = tmp_path_factory.mktemp("server") / "server.log"
        server = start_server(model or tiny_model, log, *flags)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(server_factory) -> LiveServer:
    """The module's shared server with default flags."""
    return server_factory("--max-num-seqs", "32")


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
