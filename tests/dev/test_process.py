"""A container process: PATH resolution, restart on crash, SIGTERM then SIGKILL."""
from __future__ import annotations

import sys
import time

from halyard.dev.podenv import ContainerLaunch
from halyard.dev.process import ContainerProcess


def make(tmp_path, argv, policy="Always"):
    launch = ContainerLaunch("c", tuple(argv), {"GREETING": "hi"}, None)
    return ContainerProcess(launch, {"PATH": "/usr/bin:/bin"}, tmp_path / "c.log", tmp_path / "work", policy)


def test_runs_with_env_and_logs(tmp_path):
    proc = make(tmp_path, ["sh", "-c", "echo $GREETING; exit 3"], policy="Never")
    proc.start()
    proc.proc.wait(10)
    assert proc.poll() and proc.last_exit.code == 3 and proc.last_exit.reason == "Error"
    assert "hi" in (tmp_path / "c.log").read_text()


def test_unknown_executable_is_a_start_error(tmp_path):
    proc = make(tmp_path, ["halyard-no-such-binary"])
    proc.start()
    assert not proc.running and proc.last_exit.code == 127 and "not found" in proc.last_exit.message


def test_crash_restarts_with_backoff(tmp_path):
    proc = make(tmp_path, ["sh", "-c", "exit 1"])
    proc.start()
    deadline = time.monotonic() + 10
    while proc.restarts == 0 and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.05)
    assert proc.restarts == 1


def test_stop_escalates_to_sigkill_after_grace(tmp_path):
    ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('rea' + 'dy', flush=True); time.sleep(60)"
    proc = make(tmp_path, [sys.executable, "-c", ignore_term])
    proc.launch = ContainerLaunch("c", (sys.executable, "-c", ignore_term), {}, None)
    proc.start()
    while "\nready\n" not in (tmp_path / "c.log").read_text():
        time.sleep(0.05)
    started = time.monotonic()
    proc.stop(grace_s=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert proc.last_exit.code == -9
