"""Background processes of a dev environment (pod runner, operator), by pid file.

Each runs in its own session (process group) so stopping it also stops what it
spawned; `stop` only signals pids recorded by `start`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from halyard.dev.paths import DevPaths


def _pid_file(paths: DevPaths, name: str) -> Path:
    return paths.pids / f"{name}.pid"


def log_file(paths: DevPaths, name: str) -> Path:
    return paths.logs / f"{name}.log"


def read_pid(paths: DevPaths, name: str) -> int | None:
    try:
        pid = int(_pid_file(paths, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def start(paths: DevPaths, name: str, argv: list[str], env: dict | None = None) -> int:
    """Start `argv` detached with output to logs/<name>.log; returns its pid."""
    existing = read_pid(paths, name)
    if existing:
        return existing
    paths.pids.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    with open(log_file(paths, name), "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _pid_file(paths, name).write_text(str(proc.pid))
    return proc.pid


def stop(paths: DevPaths, name: str, grace_s: float = 20.0) -> bool:
    """SIGTERM the daemon's process group, SIGKILL after grace_s; True if it was running."""
    pid = read_pid(paths, name)
    _pid_file(paths, name).unlink(missing_ok=True)
    if pid is None:
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        _signal(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap when it is our child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
