"""Init containers in the dev pod runner: run in order, each must exit 0 (a failure
retries with back-off), and only then do the pod's containers start."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from halyard.dev.managed import ManagedPod


@dataclass(frozen=True)
class Config:
    log_dir: Path
    work_dir: Path


def pod(tmp_path, init_scripts, main="echo main >> order; sleep 30"):
    sh = lambda name, script: {"name": name, "command": ["sh", "-c", script], "workingDir": str(tmp_path)}
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"initContainers": [sh(f"init{i}", s) for i, s in enumerate(init_scripts)],
                     "containers": [sh("main", main)], "terminationGracePeriodSeconds": 1},
            "status": {"podIP": "127.0.0.9"}}


def run_until(managed: ManagedPod, done, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        managed.step()
        time.sleep(0.05)
    return done()


def test_init_containers_run_in_order_before_the_container(tmp_path):
    managed = ManagedPod.create(pod(tmp_path, ["echo a >> order; sleep 0.3", "echo b >> order"]),
                                Config(tmp_path / "logs", tmp_path / "work"), {"PATH": "/usr/bin:/bin"}, None)
    order = tmp_path / "order"
    try:
        assert run_until(managed, lambda: order.is_file() and order.read_text().split() == ["a", "b", "main"])
        assert managed.procs["main"].running
    finally:
        managed.stop(1)


def test_a_failing_init_container_retries_and_holds_the_container_back(tmp_path):
    # fails on its first run, succeeds on the second
    script = "if [ -f tried ]; then echo init >> order; else touch tried; exit 1; fi"
    managed = ManagedPod.create(pod(tmp_path, [script]), Config(tmp_path / "logs", tmp_path / "work"),
                                {"PATH": "/usr/bin:/bin"}, None)
    order = tmp_path / "order"
    try:
        assert run_until(managed, lambda: (tmp_path / "tried").is_file())
        managed.step()
        assert not managed.procs["main"].running and not order.exists()
        assert run_until(managed, lambda: order.is_file() and order.read_text().split() == ["init", "main"])
        assert managed.inits == []
    finally:
        managed.stop(1)
