"""Local processes for `halyard bench router`: real workers and routers on loopback ports."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from halyard_operator.signals.exposition import parse_exposition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    """A started process and its root URL."""

    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _start(cmd: list[str], url: str, log: Path, ready_timeout: float) -> Proc:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = Proc(subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env), url, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{cmd[2]} exited with {proc.proc.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.stop()
    raise RuntimeError(f"{cmd[2]} not ready in {ready_timeout:.0f}s; see {log}")


def start_worker(model_dir: Path, name: str, log_dir: Path, kv_cache_memory: str, max_num_seqs: int) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(model_dir),
           "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--dtype", "float32", "--kv-cache-memory", kv_cache_memory, "--max-num-seqs", str(max_num_seqs)]
    return _start(cmd, f"http://127.0.0.1:{port}", log_dir / f"worker-{port}.log", 300)


def start_stub_worker(log_dir: Path) -> Proc:
    """A worker stand-in that answers at once (stub_worker)."""
    port = free_port()
    cmd = [sys.executable, "-m", "halyard.bench.stub_worker", str(port)]
    return _start(cmd, f"http://127.0.0.1:{port}", log_dir / f"stub-worker-{port}.log", 60)


def start_router(backends: list[str], policy: str, log_dir: Path, *extra: str) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "halyard_router.main", "--host", "127.0.0.1", "--port", str(port),
           "--policy", policy, *[a for url in backends for a in ("--backend", url)], *extra]
    return _start(cmd, f"http://127.0.0.1:{port}", log_dir / f"router-{policy}-{port}.log", 60)


def prefix_counters(urls: list[str]) -> tuple[float, float]:
    """(hit tokens, queried tokens) summed over the workers' vllm: prefix cache counters."""
    hits = queries = 0.0
    for url in urls:
        for sample in parse_exposition(httpx.get(f"{url}/metrics", timeout=10).text):
            if sample.name == "vllm:prefix_cache_hits_total":
                hits += sample.value
            elif sample.name == "vllm:prefix_cache_queries_total":
                queries += sample.value
    return hits, queries
